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
    // No record holds a path with a control character or longer than a line (TOT's records
    // are refused with one), and PostgreSQL refuses a NUL as a parameter: such a path
    // belongs to nobody.
    if path.chars().count() > crate::model::MOST_LINE_CHARS || path.chars().any(char::is_control) {
        return Ok(vec![]);
    }
    let rows: Vec<(String, String, String)> = on_db!(db, p => bind!(sqlx::query_as(
        "SELECT 'visual', id, client_id FROM visuals WHERE main_image = $1 OR placement_image = $1
         UNION ALL
         SELECT 'job', j.id, j.client_id FROM job_process_lines l JOIN jobs j ON j.id = l.job_id WHERE l.image = $1
         UNION ALL
         SELECT 'delivery', id, client_id FROM deliveries WHERE pod_signature_image = $1
         UNION ALL
         SELECT 'stock', sku, client_id FROM stock WHERE picture = $1
         UNION ALL
         SELECT DISTINCT 'po', o.id, o.client_id FROM purchase_order_images i
           JOIN purchase_orders o ON o.id = i.po_id WHERE i.image = $1",
    ), path)
    .fetch_all(p).await)?;
    Ok(rows
        .into_iter()
        .filter_map(|(kind, id, client_id)| Some(MediaOwner { kind: MediaKind::from_code(&kind)?, id, client_id }))
        .collect())
}
