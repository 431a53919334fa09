//! Diesel table definitions, as `diesel print-schema` writes them for the
//! migrations in `migrations/` (array elements declared NOT NULL by the CHECKs).

diesel::table! {
    audit_chain_heads (chain) {
        chain -> Text,
        seq -> Int8,
        hash -> Text,
        last_at -> Timestamptz,
    }
}

diesel::table! {
    audit_entries (id) {
        id -> Uuid,
        chain -> Text,
        seq -> Int8,
        at -> Timestamptz,
        actor_id -> Nullable<Uuid>,
        actor_username -> Nullable<Text>,
        actor_full_name -> Nullable<Text>,
        action -> Text,
        entity_type -> Text,
        entity_id -> Nullable<Uuid>,
        batch_id -> Nullable<Uuid>,
        reason -> Nullable<Text>,
        before -> Nullable<Jsonb>,
        after -> Nullable<Jsonb>,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    email_outbox (id) {
        id -> Uuid,
        created_at -> Timestamptz,
        kind -> Text,
        recipients -> Array<Text>,
        subject -> Text,
        body -> Text,
        urgent -> Bool,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        sent_at -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    sessions (id) {
        id -> Uuid,
        user_id -> Uuid,
        created_at -> Timestamptz,
        last_seen_at -> Timestamptz,
        expires_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        revoked_reason -> Nullable<Text>,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        username -> Text,
        full_name -> Text,
        email -> Text,
        roles -> Array<Text>,
        active -> Bool,
        password_hash -> Text,
        failed_logins -> Int4,
        locked_until -> Nullable<Timestamptz>,
        password_changed_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(audit_entries -> audit_chain_heads (chain));
diesel::joinable!(audit_entries -> users (actor_id));
diesel::joinable!(sessions -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    audit_chain_heads,
    audit_entries,
    email_outbox,
    sessions,
    users,
);
