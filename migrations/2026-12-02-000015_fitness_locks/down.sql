REVOKE UPDATE (id) ON instruments FROM cellqc_app;
