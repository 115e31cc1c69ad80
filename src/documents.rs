//! Documents clients download: delivery note, packing note, invoice and statement as PDF
//! (written with pdf-writer from the same store data the pages show), and the statement as
//! CSV. TOT's name and colour come from `[branding]`.
//!
//! The layout below is hand-written because pdf-writer is deliberately low-level: it writes
//! PDF objects, and a document here is a header, a few label/value lines and tables. Text
//! uses the standard Helvetica fonts (no embedding) in WinAnsi encoding; figures are set in
//! Courier so columns of numbers line up exactly.
//!
//! Over 500 lines: the four documents share one page layout and its helpers here.

use chrono::NaiveDate;
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use crate::config::Config;
use crate::model::{Money, Total};
use crate::store::enquiries::{Aging, DeliveryRow, InvoiceDoc};

const WIDTH: f32 = 595.0; // A4, points
const HEIGHT: f32 = 842.0;
const MARGIN: f32 = 50.0;
const BODY: f32 = 10.0;

const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");
const MONO: Name<'static> = Name(b"F3");

/// Text in WinAnsi (what the standard fonts read: Latin-1 and the 0x80–0x9F block of
/// Windows-1252); a letter it lacks is its base letter where there is one, and any other
/// character `?`. A value of several lines (an address) is written on its one line of the
/// page, its lines joined by commas.
fn win_ansi(s: &str) -> Vec<u8> {
    let joined;
    let s = if s.contains(['\n', '\r']) {
        joined = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(", ");
        joined.as_str()
    } else {
        s
    };
    // Composed first, so a letter sent as a base and an accent (`e` + U+0301) is the one
    // character Windows-1252 has; a letter it lacks is drawn as its base letter where it has
    // one (`ź` as `z`, `Ł` as `L`), else as `?`.
    use unicode_normalization::UnicodeNormalization;
    s.nfc()
        .map(|c| {
            // A letter's base letter only: `≠` decomposes to `=` and a mark, which says the
            // opposite.
            one_byte(c)
                .or_else(|| c.is_alphabetic().then(|| c.to_string().nfd().next().and_then(one_byte)).flatten())
                .or(match c {
                    'Ł' => Some(b'L'),
                    'ł' => Some(b'l'),
                    'Đ' => Some(b'D'),
                    'đ' => Some(b'd'),
                    'ı' => Some(b'i'),
                    'Ħ' => Some(b'H'),
                    'ħ' => Some(b'h'),
                    _ => None,
                })
                .unwrap_or(b'?')
        })
        .collect()
}

/// `c`'s byte in Windows-1252 (the standard fonts' WinAnsiEncoding), if it has one.
fn one_byte(c: char) -> Option<u8> {
    Some(match c {
        '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{ff}' => c as u8,
        '€' => 0x80,
        '‚' => 0x82,
        'ƒ' => 0x83,
        '„' => 0x84,
        '…' => 0x85,
        '†' => 0x86,
        '‡' => 0x87,
        'ˆ' => 0x88,
        '‰' => 0x89,
        'Š' => 0x8a,
        '‹' => 0x8b,
        'Œ' => 0x8c,
        'Ž' => 0x8e,
        '‘' => 0x91,
        '’' => 0x92,
        '“' => 0x93,
        '”' => 0x94,
        '•' => 0x95,
        '–' => 0x96,
        '—' => 0x97,
        '˜' => 0x98,
        '™' => 0x99,
        'š' => 0x9a,
        '›' => 0x9b,
        'œ' => 0x9c,
        'ž' => 0x9e,
        'Ÿ' => 0x9f,
        _ => return None,
    })
}

/// Helvetica's average advance is about half the font size; good enough to cut text that
/// would run into the next column.
fn fit(s: &str, width: f32, size: f32) -> String {
    crate::model::shortened(s, (width / (size * 0.52)) as usize).into_owned()
}

#[derive(Clone, Copy)]
enum Align {
    Left,
    /// Right-aligned in Courier (figures).
    Right,
}

/// A column: heading, width in points, alignment.
struct Col<'a>(pub &'a str, pub f32, pub Align);

/// Pages being laid out top to bottom.
struct Writer {
    brand: String,
    colour: (f32, f32, f32),
    title: String,
    pages: Vec<Content>,
    y: f32,
}

impl Writer {
    fn new(config: &Config, title: &str) -> Writer {
        let hex = config.branding.colour.trim_start_matches('#');
        let channel = |i: usize| {
            let part = if hex.len() == 3 {
                hex.get(i..i + 1).map(|h| h.repeat(2))
            } else {
                hex.get(2 * i..2 * i + 2).map(str::to_string)
            };
            part.and_then(|p| u8::from_str_radix(&p, 16).ok()).unwrap_or(0) as f32 / 255.0
        };
        let mut w = Writer {
            brand: config.branding.name.clone(),
            colour: (channel(0), channel(1), channel(2)),
            title: title.to_string(),
            pages: vec![],
            y: 0.0,
        };
        w.new_page();
        w
    }

    fn page(&mut self) -> &mut Content {
        self.pages.last_mut().expect("a page")
    }

    fn text_at(&mut self, font: Name<'static>, size: f32, x: f32, y: f32, s: &str) {
        let bytes = win_ansi(s);
        let c = self.page();
        c.begin_text();
        c.set_font(font, size);
        c.next_line(x, y);
        c.show(Str(&bytes));
        c.end_text();
    }

    fn new_page(&mut self) {
        self.pages.push(Content::new());
        let (r, g, b) = self.colour;
        let n = self.pages.len();
        let c = self.page();
        c.set_fill_rgb(r, g, b);
        c.rect(0.0, HEIGHT - 60.0, WIDTH, 60.0);
        c.fill_nonzero();
        c.set_fill_rgb(1.0, 1.0, 1.0);
        let (brand, title) = (self.brand.clone(), self.title.clone());
        self.text_at(BOLD, 18.0, MARGIN, HEIGHT - 38.0, &brand);
        let t = fit(&title, 300.0, 12.0);
        self.text_at(REGULAR, 12.0, WIDTH - MARGIN - 300.0, HEIGHT - 36.0, &t);
        self.page().set_fill_rgb(0.0, 0.0, 0.0);
        if n > 1 {
            self.text_at(REGULAR, 8.0, WIDTH - MARGIN - 60.0, HEIGHT - 52.0, &format!("page {n}"));
            self.page().set_fill_rgb(0.0, 0.0, 0.0);
        }
        self.y = HEIGHT - 90.0;
    }

    fn need(&mut self, h: f32) {
        if self.y - h < MARGIN {
            self.new_page();
        }
    }

    fn heading(&mut self, s: &str) {
        self.need(30.0);
        self.y -= 8.0;
        let y = self.y;
        self.text_at(BOLD, 13.0, MARGIN, y, s);
        self.y -= 20.0;
    }

    /// "Label: value" lines.
    fn fields(&mut self, rows: &[(&str, String)]) {
        for (label, value) in rows {
            if value.is_empty() {
                continue;
            }
            self.need(15.0);
            let y = self.y;
            self.text_at(BOLD, BODY, MARGIN, y, label);
            let v = fit(value, WIDTH - 2.0 * MARGIN - 120.0, BODY);
            self.text_at(REGULAR, BODY, MARGIN + 120.0, y, &v);
            self.y -= 15.0;
        }
        self.y -= 6.0;
    }

    fn table(&mut self, cols: &[Col<'_>], rows: &[Vec<String>]) {
        let header = |w: &mut Writer| {
            w.need(34.0);
            let mut x = MARGIN;
            let y = w.y;
            for Col(name, width, align) in cols {
                let tx = match align {
                    Align::Left => x,
                    Align::Right => x + width - name.chars().count() as f32 * BODY * 0.55,
                };
                w.text_at(BOLD, BODY, tx, y, name);
                x += width;
            }
            let c = w.page();
            c.set_line_width(0.6);
            c.move_to(MARGIN, y - 4.0);
            c.line_to(x, y - 4.0);
            c.stroke();
            w.y -= 17.0;
        };
        header(self);
        for row in rows {
            if self.y - 14.0 < MARGIN {
                self.new_page();
                header(self);
            }
            let mut x = MARGIN;
            let y = self.y;
            for (Col(_, width, align), cell) in cols.iter().zip(row) {
                match align {
                    Align::Left => {
                        let t = fit(cell, width - 6.0, BODY);
                        self.text_at(REGULAR, BODY, x, y, &t);
                    }
                    Align::Right => {
                        // Courier: every glyph is 0.6 em wide.
                        let w = cell.chars().count() as f32 * BODY * 0.6;
                        self.text_at(MONO, BODY, x + width - w, y, cell);
                    }
                }
                x += width;
            }
            self.y -= 14.0;
        }
        self.y -= 8.0;
    }

    fn paragraph(&mut self, s: &str) {
        self.need(15.0);
        let y = self.y;
        self.text_at(REGULAR, BODY, MARGIN, y, s);
        self.y -= 15.0;
    }

    fn finish(self) -> Vec<u8> {
        let mut pdf = Pdf::new();
        let catalog = Ref::new(1);
        let tree = Ref::new(2);
        let info = Ref::new(3);
        let fonts = [
            (REGULAR, Ref::new(4), "Helvetica"),
            (BOLD, Ref::new(5), "Helvetica-Bold"),
            (MONO, Ref::new(6), "Courier"),
        ];
        let mut next = 7;
        let mut page_ids = vec![];
        pdf.catalog(catalog).pages(tree);
        for (_, id, base) in &fonts {
            pdf.type1_font(*id).base_font(Name(base.as_bytes())).encoding_predefined(Name(b"WinAnsiEncoding"));
        }
        let title = format!("{} — {}", self.brand, self.title);
        pdf.document_info(info).title(TextStr(&title)).creator(TextStr("cport"));
        for content in self.pages {
            let (page_id, content_id) = (Ref::new(next), Ref::new(next + 1));
            next += 2;
            page_ids.push(page_id);
            let mut page = pdf.page(page_id);
            page.media_box(Rect::new(0.0, 0.0, WIDTH, HEIGHT));
            page.parent(tree);
            page.contents(content_id);
            let mut res = page.resources();
            let mut f = res.fonts();
            for (name, id, _) in &fonts {
                f.pair(*name, *id);
            }
            f.finish();
            res.finish();
            page.finish();
            pdf.stream(content_id, &content.finish());
        }
        let count = page_ids.len() as i32;
        pdf.pages(tree).kids(page_ids).count(count);
        pdf.finish()
    }
}

fn date(d: Option<NaiveDate>) -> String {
    d.map(|d| d.format("%-d %b %Y").to_string()).unwrap_or_default()
}

fn delivery_fields(client_name: &str, d: &DeliveryRow) -> Vec<(&'static str, String)> {
    vec![
        ("Client", client_name.to_string()),
        ("Deliver to", d.venue.clone()),
        ("Contact", d.contact.clone().unwrap_or_default()),
        ("Your reference", d.client_ref.clone().unwrap_or_default()),
        ("Job", d.job_id.clone().unwrap_or_default()),
        ("What", d.description.clone()),
        ("Sent", date(d.sent_date)),
        ("Delivery date", date(d.delivery_date)),
        (
            "Carrier",
            match (&d.tracking_carrier, &d.tracking_number) {
                (Some(c), Some(n)) => format!("{c} {n}"),
                (Some(c), None) => c.clone(),
                _ => String::new(),
            },
        ),
    ]
}

/// The delivery note: where it goes and what is in it, with a line for the signature.
pub fn delivery_note(config: &Config, client_name: &str, d: &DeliveryRow, lines: &[(String, i64)]) -> Vec<u8> {
    let mut w = Writer::new(config, &format!("Delivery note {}", d.id));
    w.heading(&format!("Delivery note {}", d.id));
    w.fields(&delivery_fields(client_name, d));
    w.heading("Contents");
    let rows: Vec<Vec<String>> = lines.iter().map(|(desc, qty)| vec![desc.clone(), qty.to_string()]).collect();
    w.table(&[Col("Item", 395.0, Align::Left), Col("Quantity", 100.0, Align::Right)], &rows);
    // Summed wide: quantities TOT sends may add up past an i64.
    let total: i128 = lines.iter().map(|l| i128::from(l.1)).sum();
    w.paragraph(&format!("{} line(s), {total} item(s) in all.", lines.len()));
    w.y -= 30.0;
    w.paragraph("Received in good order by: ______________________    Date: ____________");
    w.finish()
}

/// The packing note: each container and what it holds.
pub fn packing_note(config: &Config, client_name: &str, d: &DeliveryRow, packing: &[(String, String, i64)]) -> Vec<u8> {
    let mut w = Writer::new(config, &format!("Packing note {}", d.id));
    w.heading(&format!("Packing note {}", d.id));
    w.fields(&delivery_fields(client_name, d));
    w.heading("Packing");
    let rows: Vec<Vec<String>> =
        packing.iter().map(|(c, desc, qty)| vec![c.clone(), desc.clone(), qty.to_string()]).collect();
    w.table(
        &[
            Col("Container", 140.0, Align::Left),
            Col("Contents", 275.0, Align::Left),
            Col("Quantity", 80.0, Align::Right),
        ],
        &rows,
    );
    let containers: std::collections::BTreeSet<&str> = packing.iter().map(|p| p.0.as_str()).collect();
    w.paragraph(&format!(
        "{} container(s), {} item(s).",
        containers.len(),
        packing.iter().map(|p| i128::from(p.2)).sum::<i128>()
    ));
    w.finish()
}

/// One invoice.
pub fn invoice(config: &Config, client_name: &str, currency: &str, i: &InvoiceDoc) -> Vec<u8> {
    // A credit is titled as one: the statement marks it CR, and its total is negative.
    let title = format!("{} {}", if i.is_credit_note() { "Credit note" } else { "Invoice" }, i.id);
    let mut w = Writer::new(config, &title);
    w.heading(&title);
    w.fields(&[
        ("Client", client_name.to_string()),
        ("Date", date(Some(i.date))),
        ("Due", date(i.due_date)),
        ("Your PO", i.client_po_ref.clone().unwrap_or_default()),
        ("For", i.job_name.clone()),
    ]);
    let m = |v: i64| format!("{} {currency}", Money(v));
    w.table(
        &[Col("", 345.0, Align::Left), Col("Amount", 150.0, Align::Right)],
        &[
            vec!["Total".into(), m(i.total)],
            vec!["Paid".into(), m(i.paid)],
            vec!["Outstanding".into(), m(i.outstanding())],
        ],
    );
    w.finish()
}

/// The statement: aging, then every open invoice.
pub fn statement(
    config: &Config,
    client_name: &str,
    currency: &str,
    today: NaiveDate,
    aging: Option<&Aging>,
    open: &[InvoiceDoc],
) -> Vec<u8> {
    let mut w = Writer::new(config, &format!("Statement, {}", date(Some(today))));
    w.heading(&format!("Statement for {client_name}"));
    w.fields(&[("Date", date(Some(today))), ("Currency", currency.to_string())]);
    w.heading("Balance and aging");
    match aging {
        Some(a) => {
            // TOT's figures as sent: the total owed, and the parts of it overdue.
            // The date, then four sums of money in columns of one width.
            let sums = [
                ("Total owed", a.current_balance),
                ("Over 30 days", a.over_30),
                ("Over 60 days", a.over_60),
                ("Over 90 days", a.over_90),
            ];
            let cols = std::iter::once(Col("As of", 95.0, Align::Left))
                .chain(sums.iter().map(|(heading, _)| Col(heading, 100.0, Align::Right)));
            let row = std::iter::once(date(Some(a.as_of))).chain(sums.iter().map(|(_, m)| Money(*m).to_string()));
            w.table(&cols.collect::<Vec<_>>(), &[row.collect()]);
        }
        None => w.paragraph("TOT has not sent an account summary yet."),
    }
    w.heading("Open invoices and credit notes");
    let rows: Vec<Vec<String>> = open
        .iter()
        .map(|i| {
            // "CR" marks a credit, as on accountants' statements.
            let id = if i.is_credit_note() { format!("{} CR", i.id) } else { i.id.clone() };
            vec![
                id,
                date(Some(i.date)),
                date(i.due_date),
                i.job_name.clone(),
                Money(i.total).to_string(),
                Money(i.outstanding()).to_string(),
            ]
        })
        .collect();
    w.table(
        &[
            Col("Invoice", 85.0, Align::Left),
            Col("Date", 70.0, Align::Left),
            Col("Due", 70.0, Align::Left),
            Col("For", 120.0, Align::Left),
            Col("Total", 75.0, Align::Right),
            Col("Outstanding", 75.0, Align::Right),
        ],
        &rows,
    );
    let outstanding = Total::of(open.iter().map(InvoiceDoc::outstanding));
    let credits = open.iter().filter(|i| i.is_credit_note()).count();
    w.paragraph(&format!(
        "{} open invoice(s) and {credits} credit note(s); outstanding {outstanding} {currency}.",
        open.len() - credits,
    ));
    // The rows and TOT's balance come from different records; when they disagree the
    // reader is told, rather than left to find the difference.
    if let Some(a) = aging
        && i128::from(a.current_balance) != outstanding.0
    {
        w.paragraph(&format!(
            "TOT's total owed ({} {currency}) differs from these rows by {} {currency}: \
             payments or charges not yet matched to an invoice.",
            Money(a.current_balance),
            Total(i128::from(a.current_balance) - outstanding.0)
        ));
    }
    w.finish()
}

/// A text cell, never a formula ([`crate::model::spreadsheet_text`]).
fn cell(s: &str) -> String {
    crate::model::spreadsheet_text(s)
}

/// The statement as CSV: one row per open invoice or credit note, then the aging: the total owed and the
/// parts of it overdue by more than 30, 60 and 90 days.
pub fn statement_csv(currency: &str, aging: Option<&Aging>, open: &[InvoiceDoc]) -> Result<Vec<u8>, csv::Error> {
    let mut out = csv::Writer::from_writer(vec![]);
    out.write_record([
        "kind",
        "invoice",
        "date",
        "due_date",
        "client_po_ref",
        "job",
        "total",
        "paid",
        "outstanding",
        "currency",
    ])?;
    for i in open {
        let kind = if i.is_credit_note() { "credit_note" } else { "invoice" };
        out.write_record([
            kind.to_string(),
            cell(&i.id),
            i.date.to_string(),
            i.due_date.map(|d| d.to_string()).unwrap_or_default(),
            cell(i.client_po_ref.as_deref().unwrap_or_default()),
            cell(&i.job_name),
            Money(i.total).to_string(),
            Money(i.paid).to_string(),
            Money(i.outstanding()).to_string(),
            currency.to_string(),
        ])?;
    }
    if let Some(a) = aging {
        for (bucket, v) in
            [("total_owed", a.current_balance), ("over_30", a.over_30), ("over_60", a.over_60), ("over_90", a.over_90)]
        {
            out.write_record([
                "aging".to_string(),
                bucket.to_string(),
                a.as_of.to_string(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                Money(v).to_string(),
                currency.to_string(),
            ])?;
        }
    }
    out.into_inner().map_err(|e| e.into_error().into())
}

#[cfg(test)]
mod tests {
    /// Letters of Central European names are drawn as their base letters, an accent sent
    /// apart is drawn with its letter, and what has no letter here is `?`.
    #[test]
    fn text_the_standard_fonts_lack_is_drawn_as_near_as_they_can() {
        assert_eq!(super::win_ansi("Zakład Łódź, Kraków"), b"Zaklad L\xf3dz, Krak\xf3w");
        assert_eq!(super::win_ansi("Cafe\u{301} – 5 €"), b"Caf\xe9 \x96 5 \x80");
        assert_eq!(super::win_ansi("東京 🎉"), b"?? ?");
        assert_eq!(super::win_ansi("1 ≠ 2"), b"1 ? 2", "a sign's base is no sign of the same meaning");
    }

    use super::*;

    #[test]
    fn formulas_are_not_live_in_the_csv() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("Tees"), "Tees");
    }

    #[test]
    fn text_outside_win_ansi_is_replaced_not_dropped() {
        assert_eq!(win_ansi("Café – 5 €"), b"Caf\xe9 \x96 5 \x80");
        assert_eq!(win_ansi("日本"), b"??");
        // Windows-1252's letters and signs the fonts have.
        assert_eq!(win_ansi("Škoda™ œ"), b"\x8akoda\x99 \x9c");
    }

    #[test]
    fn a_value_of_several_lines_is_one_line_of_the_page() {
        assert_eq!(win_ansi("Unit 4\r\nHigh St\r\n\r\nLeeds"), b"Unit 4, High St, Leeds");
    }
}
