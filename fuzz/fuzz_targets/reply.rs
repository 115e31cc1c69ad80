//! Fuzzes the reply reader and the command grammar: any bytes, read as an email body (plain
//! or HTML), cut at quotes and signatures, then parsed line by line. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let fresh = cport::channels::inbound::fresh_text(&text);
    let _ = cport::channels::inbound::read_commands(&fresh);
    let _ = cport::channels::inbound::html_to_text(&text);
    for line in text.lines() {
        let _ = cport::actions::commands::parse_line(line);
    }
    if let Some(msg) = mail_like(data) {
        let _ = cport::channels::inbound::read_commands(&cport::channels::inbound::fresh_text(&msg));
    }
});

/// Treats the input as a whole message too: the body after the first blank line.
fn mail_like(data: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    text.split_once("\n\n").map(|(_, body)| body.to_string())
}
