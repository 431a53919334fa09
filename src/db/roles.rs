//! The two database roles (ARCHITECTURE "Database roles"): `cellqc_owner`
//! owns the schema and migrates; `cellqc_app` is what the server connects
//! as, and can neither rewrite nor remove what the trail holds.
//!
//! The grants are a migration (`2026-12-01-000009_database_roles`); this
//! module sets up the embedded cluster's roles before migrating, and asks of
//! any connection whether its role could rewrite the trail.

use anyhow::Context;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use serde::Serialize;

/// Owns the schema; runs migrations.
pub const OWNER_ROLE: &str = "cellqc_owner";
/// The server's role at run time.
pub const APP_ROLE: &str = "cellqc_app";

/// The records a role must not be able to rewrite: the trail and the facts
/// it describes.
const KEPT: [&str; 4] = ["audit_entries", "signatures", "results", "custody_events"];

/// Makes the roles and ownership right, as a superuser, before migrations
/// run; idempotent. The embedded cluster runs it at every start (both roles
/// log in over its private socket only); `cellqc setup-roles` runs it on an
/// external database. Neither role holds a special attribute. The owner
/// owns the database, its `public` schema and every object in it: a data
/// directory of the first version, whose objects the superuser created, is
/// adopted here so that `cellqc_owner` can migrate it.
pub fn bootstrap(superuser: &mut PgConnection, database: &str) -> anyhow::Result<()> {
    for role in [OWNER_ROLE, APP_ROLE] {
        diesel::sql_query(format!(
            "DO $$ BEGIN \
               IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN \
                 CREATE ROLE {role}; \
               END IF; \
             END $$"
        ))
        .execute(superuser)
        .with_context(|| format!("creating role {role}"))?;
        diesel::sql_query(format!(
            "ALTER ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
        ))
        .execute(superuser)?;
    }
    diesel::sql_query(format!(
        "ALTER DATABASE \"{}\" OWNER TO {OWNER_ROLE}",
        database.replace('"', "\"\"")
    ))
    .execute(superuser)?;
    diesel::sql_query(format!("ALTER SCHEMA public OWNER TO {OWNER_ROLE}")).execute(superuser)?;
    diesel::sql_query(ADOPT)
        .execute(superuser)
        .context("giving the schema's objects to cellqc_owner")?;
    Ok(())
}

/// Every table, view and function of `public` not owned by the owner (and
/// not part of an extension) becomes the owner's. Indexes and owned
/// sequences follow their tables.
const ADOPT: &str = "DO $$
DECLARE r record;
BEGIN
    FOR r IN
        SELECT c.relname, c.relkind FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm')
          AND pg_get_userbyid(c.relowner) <> 'cellqc_owner'
          AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('ALTER %s public.%I OWNER TO cellqc_owner',
            CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END,
            r.relname);
    END LOOP;
    FOR r IN
        SELECT p.oid::regprocedure AS sig FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> 'cellqc_owner'
          AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO cellqc_owner', r.sig);
    END LOOP;
END $$";

/// What the connected role could do to the kept records, for `serve`'s
/// warning and `/readyz`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RoleCheck {
    /// The role the server is connected as.
    pub role: String,
    /// Whether it could rewrite or remove kept records (any risk below).
    pub can_rewrite_trail: bool,
    /// Each way it could, in words.
    pub risks: Vec<String>,
}

#[derive(QueryableByName)]
struct Privileges {
    #[diesel(sql_type = Text)]
    role: String,
    #[diesel(sql_type = Bool)]
    superuser: bool,
    #[diesel(sql_type = Bool)]
    bypass_rls: bool,
    #[diesel(sql_type = Bool)]
    replication_role: bool,
}

#[derive(QueryableByName)]
struct TableRights {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Bool)]
    owner: bool,
    #[diesel(sql_type = Bool)]
    update: bool,
    #[diesel(sql_type = Bool)]
    delete: bool,
    #[diesel(sql_type = Bool)]
    truncate: bool,
}

/// Asks PostgreSQL what the current role may do to the kept records.
pub fn check(conn: &mut PgConnection) -> QueryResult<RoleCheck> {
    let p: Privileges = diesel::sql_query(
        "SELECT current_user::text AS role, r.rolsuper AS superuser, r.rolbypassrls AS bypass_rls, \
                has_parameter_privilege('session_replication_role', 'SET') AS replication_role \
         FROM pg_roles r WHERE r.rolname = current_user",
    )
    .get_result(conn)?;
    let tables: Vec<TableRights> = diesel::sql_query(
        "SELECT t AS table_name, \
                pg_has_role(current_user, c.relowner, 'USAGE') AS owner, \
                has_table_privilege(c.oid, 'UPDATE') AS update, \
                has_table_privilege(c.oid, 'DELETE') AS delete, \
                has_table_privilege(c.oid, 'TRUNCATE') AS truncate \
         FROM unnest($1::text[]) AS t \
         JOIN pg_class c ON c.oid = to_regclass('public.' || t)",
    )
    .bind::<diesel::sql_types::Array<Text>, _>(KEPT.to_vec())
    .load(conn)?;
    let mut risks = Vec::new();
    if p.superuser {
        risks.push("is a superuser: can disable triggers and rewrite any row".to_owned());
    }
    if p.replication_role && !p.superuser {
        risks.push("may set session_replication_role, which silences triggers".to_owned());
    }
    if p.bypass_rls && !p.superuser {
        risks.push("bypasses row-level security".to_owned());
    }
    if !p.superuser {
        for t in &tables {
            if t.owner {
                risks.push(format!("owns {} (can disable its triggers)", t.table_name));
            }
            for (held, what) in [
                (t.update, "UPDATE"),
                (t.delete, "DELETE"),
                (t.truncate, "TRUNCATE"),
            ] {
                if held {
                    risks.push(format!("may {what} {}", t.table_name));
                }
            }
        }
    }
    Ok(RoleCheck {
        role: p.role,
        can_rewrite_trail: !risks.is_empty(),
        risks,
    })
}
