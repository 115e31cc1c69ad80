-- Pictures are served only to those who may see the record showing them: finding that
-- record by the picture's path must not scan the tables.
CREATE INDEX visuals_main_image ON visuals(main_image);
CREATE INDEX visuals_placement_image ON visuals(placement_image);
CREATE INDEX job_process_lines_image ON job_process_lines(image);
CREATE INDEX deliveries_pod_signature_image ON deliveries(pod_signature_image);
CREATE INDEX stock_picture ON stock(picture);
