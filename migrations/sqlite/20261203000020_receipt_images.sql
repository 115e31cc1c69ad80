-- A receipt's checking pictures, one row each: the picture lookup behind `/media` finds the
-- receipt by this index, where it searched every receipt's JSON list of pictures.
CREATE TABLE purchase_order_images (
    po_id TEXT NOT NULL REFERENCES purchase_orders(id) ON DELETE CASCADE,
    line_no BIGINT NOT NULL,
    image TEXT NOT NULL,
    PRIMARY KEY (po_id, line_no)
);
CREATE INDEX purchase_order_images_image ON purchase_order_images(image);
INSERT INTO purchase_order_images (po_id, line_no, image)
    SELECT r.po_id, ROW_NUMBER() OVER (PARTITION BY r.po_id ORDER BY r.line_no, j.key) - 1, j.value
    FROM purchase_order_receipts r, json_each(r.checking_images) j;
