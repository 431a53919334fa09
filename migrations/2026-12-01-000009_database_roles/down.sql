DROP TRIGGER audit_chain_heads_no_delete ON audit_chain_heads;
DROP TRIGGER audit_chain_heads_advance ON audit_chain_heads;
DROP FUNCTION cellqc_head_advances();
ALTER FUNCTION cellqc_result_awaits_review() SECURITY INVOKER RESET search_path;
ALTER FUNCTION cellqc_result_reviewed() SECURITY INVOKER RESET search_path;
ALTER FUNCTION cellqc_result_invalidated() SECURITY INVOKER RESET search_path;
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM cellqc_app;
REVOKE USAGE ON SCHEMA public FROM cellqc_app;
