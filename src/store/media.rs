//! Which records a picture under `/media` belongs to: the lookup behind private pictures.

use super::{Db, Result, bind, on_db};

/// The kind of record a picture belongs to; each kind has its page and its rule for who
/// may see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// A visual's main or placement picture.
    Visual,
    /// A job's process line picture.
    Job,
    /// A delivery's proof-of-delivery signature.
    Delivery,
    /// A stock item's picture.
    Stock,
    /// A purchase order receipt's checking picture.
    PurchaseOrder,
}

impl MediaKind {
    fn from_code(s: &str) -> Option<MediaKind> {
        Some(match s {
            "visual" => MediaKind::Visual,
            "job" => MediaKind::Job,
            "delivery" => MediaKind::Delivery,
            "stock" => MediaKind::Stock,
            "po" => MediaKind::PurchaseOrder,
            _ => return None,
        })
    }
}

/// A record that shows a picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaOwner {
    pub kind: MediaKind,
    /// The record's id (visual, job, delivery, SKU, purchase order).
    pub id: String,
    pub client_id: String,
}

/// Every record whose picture is `path` (as TOT's data names it, e.g.
/// `/media/visuals/V-1001.svg`). Usually one; a picture TOT shares between records may
/// have several, of one client or more.
pub async fn owners(db: &Db, path: &str) -> Result<Vec<MediaOwner>> {
    // No record holds a path longer than a line of text, and a longer one would make a LIKE
    // pattern past SQLite's limit: such a path belongs to nobody.
    if path.chars().count() > crate::model::MOST_LINE_CHARS {
        return Ok(vec![]);
    }
    // Receipts keep their pictures as a JSON array of strings: the path is looked for as a
    // JSON string inside it, with LIKE's own wildcards escaped (`_` is common in file names
    // and would otherwise match any character).
    let quoted = serde_json::to_string(path).unwrap_or_default();
    let escaped: String = quoted
        .chars()
        .flat_map(|c| match c {
            '\\' | '%' | '_' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    let pattern = format!("%{escaped}%");
    let rows: Vec<(String, String, String, Option<String>)> = on_db!(db, p => bind!(sqlx::query_as(
        "SELECT 'visual', id, client_id, CAST(NULL AS TEXT) FROM visuals WHERE main_image = $1 OR placement_image = $1
         UNION ALL
         SELECT 'job', j.id, j.client_id, NULL FROM job_process_lines l JOIN jobs j ON j.id = l.job_id WHERE l.image = $1
         UNION ALL
         SELECT 'delivery', id, client_id, NULL FROM deliveries WHERE pod_signature_image = $1
         UNION ALL
         SELECT 'stock', sku, client_id, NULL FROM stock WHERE picture = $1
         UNION ALL
         SELECT 'po', o.id, o.client_id, r.checking_images FROM purchase_order_receipts r
           JOIN purchase_orders o ON o.id = r.po_id
          WHERE r.checking_images LIKE $2 ESCAPE '\\'",
    ), path, &pattern)
    .fetch_all(p).await)?;
    // SQLite's LIKE ignores the case of ASCII letters: `/media/x/A.jpg` would find a receipt
    // showing `/media/x/a.jpg`, another file. The match is made exact here, on both engines.
    Ok(rows
        .into_iter()
        .filter(|(_, _, _, images)| images.as_ref().is_none_or(|i| i.contains(&quoted)))
        .filter_map(|(kind, id, client_id, _)| Some(MediaOwner { kind: MediaKind::from_code(&kind)?, id, client_id }))
        .collect())
}
