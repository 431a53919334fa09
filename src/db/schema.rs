//! Diesel table definitions, as `diesel print-schema` writes them for the
//! migrations in `migrations/` (array elements declared NOT NULL by the CHECKs).

/// Types of PostgreSQL's that diesel does not define.
pub mod sql_types {
    /// `xid8`: a 64-bit transaction id.
    #[derive(diesel::query_builder::QueryId, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "xid8"))]
    pub struct Xid8;
}

diesel::table! {
    audit_anchors (id) {
        id -> Uuid,
        created_at -> Timestamptz,
        created_by -> Nullable<Uuid>,
        chains -> Int8,
        entries -> Int8,
        root -> Text,
        key_id -> Text,
        signature -> Text,
        heads -> Jsonb,
    }
}

diesel::table! {
    audit_chain_heads (id) {
        chain -> Text,
        seq -> Int8,
        hash -> Bytea,
        last_at -> Timestamptz,
        id -> Int8,
    }
}

diesel::table! {
    audit_entries (id) {
        id -> Uuid,
        chain_id -> Int8,
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
        prev_hash -> Bytea,
        hash -> Bytea,
        rows -> Nullable<Jsonb>,
    }
}

diesel::table! {
    audit_reviews (id) {
        id -> Uuid,
        batch_id -> Uuid,
        signature_id -> Uuid,
        up_to_seq -> Int8,
        head_hash -> Bytea,
        exceptions -> Int4,
        reviewed_at -> Timestamptz,
    }
}

diesel::table! {
    batch_parents (batch_id, parent_id) {
        batch_id -> Uuid,
        parent_id -> Uuid,
        id -> Uuid,
    }
}

diesel::table! {
    batches (id) {
        id -> Uuid,
        batch_number -> Text,
        product_id -> Uuid,
        spec_id -> Uuid,
        manufactured_at -> Timestamptz,
        expires_at -> Timestamptz,
        donor_din -> Nullable<Text>,
        intended_recipient -> Nullable<Text>,
        quantity -> Nullable<Text>,
        unit -> Nullable<Text>,
        status -> Text,
        created_by -> Uuid,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    custody_events (id) {
        id -> Uuid,
        batch_id -> Uuid,
        event -> Text,
        occurred_at -> Timestamptz,
        location -> Text,
        party -> Text,
        temperature_c -> Nullable<Text>,
        excursion -> Bool,
        container_id -> Nullable<Text>,
        recipient_id -> Nullable<Text>,
        internal -> Bool,
        notes -> Nullable<Text>,
        deviation_id -> Nullable<Uuid>,
        recorded_by -> Uuid,
        recorded_at -> Timestamptz,
        audit_entry_id -> Uuid,
        seq -> Int8,
        prev_hash -> Bytea,
    }
}

diesel::table! {
    deviations (id) {
        id -> Uuid,
        batch_id -> Uuid,
        result_id -> Nullable<Uuid>,
        kind -> Text,
        severity -> Text,
        status -> Text,
        title -> Text,
        description -> Text,
        opened_by -> Nullable<Uuid>,
        opened_at -> Timestamptz,
        conclusion -> Nullable<Text>,
        root_cause -> Nullable<Text>,
        closed_by -> Nullable<Uuid>,
        closed_at -> Nullable<Timestamptz>,
        subject_id -> Nullable<Uuid>,
        result_ids -> Nullable<Array<Uuid>>,
    }
}

diesel::table! {
    idempotency_keys (user_id, key) {
        user_id -> Uuid,
        key -> Text,
        request_hash -> Text,
        status -> Int2,
        response -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    instrument_events (id) {
        id -> Uuid,
        instrument_id -> Uuid,
        kind -> Text,
        at -> Timestamptz,
        outcome -> Nullable<Text>,
        valid_until -> Nullable<Timestamptz>,
        certificate -> Nullable<Text>,
        notes -> Nullable<Text>,
        reason -> Nullable<Text>,
        recorded_by -> Uuid,
        recorded_at -> Timestamptz,
    }
}

diesel::table! {
    instruments (id) {
        id -> Uuid,
        code -> Text,
        name -> Text,
        kind -> Text,
        location -> Nullable<Text>,
        created_at -> Timestamptz,
        created_by -> Uuid,
    }
}

diesel::table! {
    material_lots (id) {
        id -> Uuid,
        code -> Text,
        name -> Text,
        lot_number -> Text,
        supplier -> Nullable<Text>,
        kind -> Text,
        expires_at -> Timestamptz,
        status -> Text,
        created_at -> Timestamptz,
        created_by -> Uuid,
        released_at -> Nullable<Timestamptz>,
        released_by -> Nullable<Uuid>,
        rejected_at -> Nullable<Timestamptz>,
        rejected_by -> Nullable<Uuid>,
        reject_reason -> Nullable<Text>,
    }
}

diesel::table! {
    material_uses (id) {
        id -> Uuid,
        material_id -> Uuid,
        batch_id -> Uuid,
        result_id -> Nullable<Uuid>,
        used_at -> Timestamptz,
        quantity -> Nullable<Numeric>,
        unit -> Nullable<Text>,
        recorded_by -> Uuid,
        recorded_at -> Timestamptz,
    }
}

diesel::table! {
    import_mappings (id) {
        id -> Uuid,
        product_id -> Uuid,
        name -> Text,
        mapping -> Jsonb,
        created_by -> Uuid,
        created_at -> Timestamptz,
        updated_by -> Uuid,
        updated_at -> Timestamptz,
        retired_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    products (id) {
        id -> Uuid,
        code -> Text,
        name -> Text,
        product_type -> Text,
        storage_min_c -> Nullable<Text>,
        storage_max_c -> Nullable<Text>,
        release_signatures_required -> Int2,
        created_by -> Uuid,
        created_at -> Timestamptz,
        audit_review_required -> Bool,
    }
}

diesel::table! {
    qualifications (id) {
        id -> Uuid,
        user_id -> Uuid,
        test_code -> Text,
        valid_from -> Timestamptz,
        valid_until -> Timestamptz,
        granted_by -> Uuid,
        granted_at -> Timestamptz,
        reason -> Nullable<Text>,
        revoked_at -> Nullable<Timestamptz>,
        revoked_by -> Nullable<Uuid>,
        revoke_reason -> Nullable<Text>,
    }
}

diesel::table! {
    results (id) {
        id -> Uuid,
        batch_id -> Uuid,
        test_code -> Text,
        value_text -> Text,
        value_numeric -> Nullable<Numeric>,
        unit -> Nullable<Text>,
        outcome -> Text,
        performed_by -> Uuid,
        performed_at -> Timestamptz,
        recorded_at -> Timestamptz,
        instrument -> Nullable<Text>,
        comment -> Nullable<Text>,
        replaces_result_id -> Nullable<Uuid>,
        reason -> Nullable<Text>,
        instrument_id -> Nullable<Uuid>,
        source_file_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::Xid8;

    signatures (id) {
        id -> Uuid,
        signer_id -> Uuid,
        signer_username -> Text,
        signer_full_name -> Text,
        meaning -> Text,
        signed_at -> Timestamptz,
        reason -> Nullable<Text>,
        record_hash -> Bytea,
        entity_type -> Text,
        entity_id -> Uuid,
        batch_id -> Nullable<Uuid>,
        statement -> Nullable<Text>,
        statement_locale -> Nullable<Text>,
        record_table -> Nullable<Text>,
        record_id -> Nullable<Uuid>,
        seal -> Nullable<Bytea>,
        xact -> Nullable<Xid8>,
    }
}

diesel::table! {
    sign_in_throttle (username, address) {
        username -> Text,
        address -> Text,
        failures -> Int4,
        last_failure_at -> Timestamptz,
        blocked_until -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    source_files (id) {
        id -> Uuid,
        batch_id -> Uuid,
        filename -> Text,
        media_type -> Text,
        content -> Bytea,
        sha256 -> Bytea,
        size -> Int4,
        uploaded_by -> Uuid,
        uploaded_at -> Timestamptz,
    }
}

diesel::table! {
    spec_tests (spec_id, code) {
        spec_id -> Uuid,
        position -> Int4,
        code -> Text,
        name -> Text,
        method -> Text,
        kind -> Text,
        unit -> Nullable<Text>,
        min_text -> Nullable<Text>,
        max_text -> Nullable<Text>,
        min_value -> Nullable<Numeric>,
        max_value -> Nullable<Numeric>,
        min_inclusive -> Bool,
        max_inclusive -> Bool,
        decimals -> Nullable<Int2>,
        options -> Nullable<Array<Text>>,
        allowed -> Array<Text>,
        required -> Bool,
        pending_release_allowed -> Bool,
        qualification_required -> Bool,
        instrument_kind -> Nullable<Text>,
        id -> Uuid,
    }
}

diesel::table! {
    specifications (id) {
        id -> Uuid,
        product_id -> Uuid,
        version -> Text,
        status -> Text,
        author_id -> Uuid,
        created_at -> Timestamptz,
        approved_at -> Nullable<Timestamptz>,
        superseded_at -> Nullable<Timestamptz>,
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
        link_path -> Nullable<Text>,
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
        csrf_token -> Nullable<Text>,
    }
}

diesel::table! {
    trend_points (result_id) {
        result_id -> Uuid,
        product_id -> Uuid,
        test_code -> Text,
        performed_at -> Timestamptz,
        batch_id -> Uuid,
        value_text -> Text,
        outcome -> Text,
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
        password_temporary -> Bool,
        locale -> Text,
    }
}

diesel::joinable!(audit_entries -> audit_chain_heads (chain_id));
diesel::joinable!(audit_entries -> users (actor_id));
diesel::joinable!(sessions -> users (user_id));

diesel::joinable!(batches -> products (product_id));
diesel::joinable!(batches -> specifications (spec_id));
diesel::joinable!(deviations -> batches (batch_id));
diesel::joinable!(results -> batches (batch_id));
diesel::joinable!(spec_tests -> specifications (spec_id));
diesel::joinable!(specifications -> products (product_id));

diesel::allow_tables_to_appear_in_same_query!(
    audit_anchors,
    audit_chain_heads,
    audit_entries,
    audit_reviews,
    batch_parents,
    batches,
    custody_events,
    deviations,
    email_outbox,
    idempotency_keys,
    import_mappings,
    instrument_events,
    instruments,
    material_lots,
    material_uses,
    products,
    qualifications,
    results,
    sessions,
    signatures,
    sign_in_throttle,
    source_files,
    spec_tests,
    specifications,
    trend_points,
    users,
);
