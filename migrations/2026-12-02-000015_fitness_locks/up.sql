-- A result (or a batch's use of a lot) shares the rows of the instrument and
-- the lots it names (FOR SHARE) from before its fitness read until it
-- commits; a calibration, an instrument taken out of or returned to service
-- and a lot's release or rejection lock the row (FOR UPDATE) before they
-- write. So a failed calibration's or a rejection's impact search can't
-- miss a result committed beside it. A row lock needs an UPDATE right: this
-- one column's is enough, and instruments_append_only refuses any actual
-- change (material_lots is already updatable: its status moves).
GRANT UPDATE (id) ON instruments TO cellqc_app;
