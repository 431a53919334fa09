//! Chain of custody rules.

use crate::lab::Lab;
use actix_web::http::StatusCode;
use cellqc::db::digest::HexDigest;
use cellqc::db::schema::{audit_entries, email_outbox};
use chrono::{Duration, Utc};
use diesel::prelude::*;
use serde_json::json;

#[actix_web::test]
async fn in_transit_only_delivered_is_accepted() {
    let lab = Lab::msc().await;
    let b = lab.batch("MSC-1").await;
    assert_eq!(
        lab.custody(&b, json!({"event": "received"})).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        lab.custody(&b, json!({"event": "shipped", "internal": true}))
            .await
            .status,
        StatusCode::CREATED
    );
    for event in ["stored", "received", "shipped", "administered", "destroyed"] {
        let r = lab.custody(&b, json!({"event": event, "recipient_id": if event == "administered" { json!("PT-1") } else { json!(null) }})).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{event}");
        assert_eq!(r.code(), "in_transit", "{event}");
    }
    assert_eq!(
        lab.custody(&b, json!({"event": "delivered"})).await.status,
        StatusCode::CREATED
    );
    assert_eq!(lab.count("custody_events"), 3);
}

#[actix_web::test]
async fn delivery_without_shipment_is_refused() {
    let lab = Lab::msc().await;
    let b = lab.batch("MSC-1").await;
    let r = lab.custody(&b, json!({"event": "delivered"})).await;
    assert_eq!(r.code(), "not_in_transit");
}

#[actix_web::test]
async fn nothing_follows_destruction_or_administration() {
    let lab = Lab::msc().await;
    let b = lab.batch("MSC-1").await;
    lab.custody(&b, json!({"event": "destroyed", "notes": "expired stock"}))
        .await;
    let r = lab.custody(&b, json!({"event": "stored"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "custody_closed");
}

#[actix_web::test]
async fn shipping_an_unreleased_batch_needs_internal() {
    let lab = Lab::msc().await;
    let b = lab.batch("MSC-1").await;
    let r = lab
        .custody(&b, json!({"event": "shipped", "party": "World Courier"}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "not_released");
    assert_eq!(lab.count("custody_events"), 0);
    let internal = lab
        .custody(&b, json!({"event": "shipped", "internal": true}))
        .await;
    assert_eq!(internal.status, StatusCode::CREATED);
    assert_eq!(internal.body["internal"], true);
}

#[actix_web::test]
async fn administration_to_anyone_but_the_intended_recipient_is_refused() {
    let lab = Lab::msc().await;
    let r = lab
        .create_batch(json!({"batch_number": "MSC-P", "intended_recipient": "PT-0042"}))
        .await;
    let b = r.body["id"].as_str().unwrap().to_owned();
    for (code, value) in cellqc::demo::msc_passing_values() {
        let id = lab.recorded(&b, code, value).await;
        lab.review(&id, "accept").await;
    }
    let quarantined = lab
        .custody(
            &b,
            json!({"event": "administered", "recipient_id": "PT-0042"}),
        )
        .await;
    assert_eq!(
        quarantined.code(),
        "not_released",
        "never into a patient before release"
    );
    lab.release(&b, &lab.qa2, json!({})).await;
    let none = lab.custody(&b, json!({"event": "administered"})).await;
    assert_eq!(none.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(none.body["errors"][0]["field"], "recipient_id");
    let wrong = lab
        .custody(
            &b,
            json!({"event": "administered", "recipient_id": "PT-0043"}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::CONFLICT);
    assert_eq!(wrong.code(), "identity_mismatch");
    assert_eq!(lab.count("custody_events"), 0);
    // The refused patient check is kept in the batch's history.
    let refused: Vec<String> = lab
        .history_actions(&b, &lab.qa)
        .await
        .into_iter()
        .filter(|a| a == "custody.identity_refused")
        .collect();
    assert_eq!(refused.len(), 1);
    let right = lab
        .custody(
            &b,
            json!({"event": "administered", "recipient_id": "PT-0042"}),
        )
        .await;
    assert_eq!(right.status, StatusCode::CREATED);
}

#[actix_web::test]
async fn events_must_keep_their_chronology() {
    let lab = Lab::msc().await;
    let b = lab.batch("MSC-1").await;
    lab.custody(
        &b,
        json!({"event": "received", "occurred_at": (Utc::now() - Duration::hours(2)).to_rfc3339()}),
    )
    .await;
    let earlier = lab.custody(&b, json!({"event": "stored", "occurred_at": (Utc::now() - Duration::hours(3)).to_rfc3339()})).await;
    assert_eq!(earlier.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(earlier.body["errors"][0]["field"], "occurred_at");
    let future = lab.custody(&b, json!({"event": "stored", "occurred_at": (Utc::now() + Duration::hours(1)).to_rfc3339()})).await;
    assert_eq!(future.body["errors"][0]["field"], "occurred_at");
    let bad_event = lab.custody(&b, json!({"event": "lost"})).await;
    assert_eq!(bad_event.body["errors"][0]["field"], "event");
}

#[actix_web::test]
async fn a_temperature_outside_the_storage_range_is_recorded_as_an_excursion() {
    let lab = Lab::msc().await;
    let b = lab.batch("MSC-1").await;
    let ok = lab
        .custody(&b, json!({"event": "stored", "temperature_c": "-180"}))
        .await;
    assert_eq!(ok.body["excursion"], false);
    let warm = lab
        .custody(&b, json!({"event": "stored", "temperature_c": -120.5}))
        .await;
    assert_eq!(warm.status, StatusCode::CREATED, "facts are never refused");
    assert_eq!(warm.body["excursion"], true);
    assert_eq!(warm.body["temperature_c"], "-120.5");
    let rec = lab.batch_record(&b).await;
    let dev = &rec["deviations"][0];
    assert_eq!(dev["kind"], "excursion");
    assert_eq!(dev["status"], "open");
    assert_eq!(warm.body["deviation_id"], dev["id"]);
    let kinds: Vec<String> = email_outbox::table
        .select(email_outbox::kind)
        .load(&mut lab.app.conn())
        .unwrap();
    assert_eq!(kinds, ["custody_excursion"]);
    assert!(
        lab.blockers(&b)
            .await
            .contains(&"open_deviation".to_owned())
    );
}

#[actix_web::test]
async fn each_event_carries_its_place_in_the_batchs_hash_chain() {
    let lab = Lab::msc().await;
    let b = lab.batch("MSC-1").await;
    lab.custody(&b, json!({"event": "received"})).await;
    lab.custody(&b, json!({"event": "stored", "temperature_c": "-190"}))
        .await;
    let list = lab
        .app
        .get(&format!("/api/v1/batches/{b}/custody"), &lab.tech)
        .await;
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    for e in items {
        let (seq, prev, hash): (i64, HexDigest, HexDigest) = audit_entries::table
            .filter(
                audit_entries::entity_id
                    .eq(uuid::Uuid::parse_str(e["id"].as_str().unwrap()).unwrap()),
            )
            .select((
                audit_entries::seq,
                audit_entries::prev_hash,
                audit_entries::hash,
            ))
            .first(&mut lab.app.conn())
            .unwrap();
        assert_eq!(e["seq"], seq);
        assert_eq!(e["prev_hash"], prev.0);
        assert_eq!(e["hash"], hash.0);
        assert_eq!(e["recorded_by"], lab.tech_id.as_str());
    }
    assert_eq!(
        items[1]["prev_hash"], items[0]["hash"],
        "consecutive entries of the batch's chain"
    );
    let auditor = lab.app.signed_in(&["auditor"]).await.1;
    assert_eq!(
        lab.app.get("/api/v1/audit/verify", &auditor).await.body["ok"],
        true
    );
    let denied = lab
        .app
        .post(&format!("/api/v1/batches/{b}/custody"), &lab.reviewer, json!({"event": "stored", "occurred_at": Utc::now().to_rfc3339(), "location": "x", "party": "y"}))
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
}

/// Hours before now, as an RFC 3339 time.
fn hours_ago(h: i64) -> String {
    (Utc::now() - Duration::hours(h)).to_rfc3339()
}

#[actix_web::test]
async fn a_shipment_dated_before_the_release_signature_is_refused() {
    let lab = Lab::msc().await;
    let b = lab.tested_batch("MSC-SHIP", &[]).await;
    lab.custody(&b, json!({"event": "stored", "occurred_at": hours_ago(8)}))
        .await;
    let released = lab.release(&b, &lab.qa2, json!({})).await;
    assert_eq!(released.status, StatusCode::OK, "{}", released.body);
    // Released now; the courier's form says it left five hours ago.
    let early = lab
        .custody(
            &b,
            json!({"event": "shipped", "occurred_at": hours_ago(5), "party": "World Courier"}),
        )
        .await;
    assert_eq!(early.status, StatusCode::CONFLICT, "{}", early.body);
    assert_eq!(early.code(), "not_released");
    assert!(
        early.body["detail"]
            .as_str()
            .unwrap()
            .contains("released at"),
        "{}",
        early.body
    );
    assert_eq!(lab.count("custody_events"), 1, "nothing was written");
    // Moving it inside the facility before the signature is fine; leaving
    // it after the signature is too.
    let internal = lab
        .custody(
            &b,
            json!({"event": "shipped", "internal": true, "occurred_at": hours_ago(5)}),
        )
        .await;
    assert_eq!(internal.status, StatusCode::CREATED, "{}", internal.body);
    let inside = lab
        .custody(
            &b,
            json!({"event": "delivered", "occurred_at": hours_ago(4)}),
        )
        .await;
    assert_eq!(inside.status, StatusCode::CREATED, "{}", inside.body);
    let out = lab
        .custody(&b, json!({"event": "shipped", "party": "World Courier"}))
        .await;
    assert_eq!(out.status, StatusCode::CREATED, "{}", out.body);
    let recorded: Vec<Option<serde_json::Value>> = audit_entries::table
        .filter(audit_entries::action.eq("custody.recorded"))
        .select(audit_entries::after)
        .load(&mut lab.app.conn())
        .unwrap();
    assert_eq!(recorded.len(), 4, "one entry per recorded event");
}

#[actix_web::test]
async fn an_administration_dated_before_release_is_refused() {
    let lab = Lab::msc().await;
    let r = lab
        .create_batch(json!({"batch_number": "MSC-ADM", "intended_recipient": "PT-0042"}))
        .await;
    let b = r.body["id"].as_str().unwrap().to_owned();
    for (code, value) in cellqc::demo::msc_passing_values() {
        let id = lab.recorded(&b, code, value).await;
        lab.review(&id, "accept").await;
    }
    lab.custody(&b, json!({"event": "stored", "occurred_at": hours_ago(6)}))
        .await;
    lab.release(&b, &lab.qa2, json!({})).await;
    let given = lab
        .custody(
            &b,
            json!({"event": "administered", "recipient_id": "PT-0042", "occurred_at": hours_ago(4)}),
        )
        .await;
    assert_eq!(given.status, StatusCode::CONFLICT, "{}", given.body);
    assert_eq!(given.code(), "not_released");
    let now = lab
        .custody(
            &b,
            json!({"event": "administered", "recipient_id": "PT-0042"}),
        )
        .await;
    assert_eq!(now.status, StatusCode::CREATED, "{}", now.body);
}

#[actix_web::test]
async fn after_a_conditional_release_the_batch_leaves_from_its_signature_on() {
    let lab = Lab::msc().await;
    let b = lab.tested_batch("MSC-COND", &["STER"]).await;
    lab.custody(&b, json!({"event": "stored", "occurred_at": hours_ago(8)}))
        .await;
    let cond = lab
        .release(&b, &lab.qa2, json!({"conditional": true, "justification": "14-day sterility pending; patient scheduled"}))
        .await;
    assert_eq!(cond.status, StatusCode::OK, "{}", cond.body);
    let backdated = lab
        .custody(
            &b,
            json!({"event": "shipped", "occurred_at": hours_ago(2), "party": "World Courier"}),
        )
        .await;
    assert_eq!(backdated.status, StatusCode::CONFLICT, "{}", backdated.body);
    assert_eq!(backdated.code(), "not_released");
    let shipped = lab
        .custody(&b, json!({"event": "shipped", "party": "World Courier"}))
        .await;
    assert_eq!(shipped.status, StatusCode::CREATED, "{}", shipped.body);
    // A delivery can't be dated before its shipment, let alone the release.
    let backdated = lab
        .custody(
            &b,
            json!({"event": "delivered", "occurred_at": hours_ago(3)}),
        )
        .await;
    assert_eq!(backdated.status, StatusCode::UNPROCESSABLE_ENTITY);
    let delivered = lab.custody(&b, json!({"event": "delivered"})).await;
    assert_eq!(delivered.status, StatusCode::CREATED, "{}", delivered.body);
}

#[actix_web::test]
async fn a_scanned_din_that_is_not_the_batchs_refuses_the_event_and_the_label_carries_the_barcode()
{
    let lab = Lab::msc().await;
    let r = lab
        .create_batch(json!({"batch_number": "UCMSC-SCAN", "donor_din": "G123498654321H", "intended_recipient": "PT-0042"}))
        .await;
    let b = r.body["id"].as_str().unwrap().to_owned();
    let before = lab.count("custody_events");
    let event = |din: &str| {
        json!({"event": "received", "occurred_at": chrono::Utc::now().to_rfc3339(), "location": "QC store",
               "party": "QC", "scanned_din": din})
    };
    // Another donation's bag: refused, nothing recorded.
    let wrong = lab.custody(&b, event("=G12349865432200")).await;
    assert_eq!(wrong.status, StatusCode::CONFLICT, "{}", wrong.body);
    assert_eq!(wrong.code(), "identity_mismatch");
    assert_eq!(wrong.body["errors"][0]["field"], "scanned_din");
    assert_eq!(lab.count("custody_events"), before);
    // Kept in the batch's history, like a refused signature, with what was
    // scanned and the sentence the history reads.
    let h = lab
        .app
        .get(&format!("/api/v1/batches/{b}/history"), &lab.qa)
        .await;
    let refused: Vec<&serde_json::Value> = h.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "custody.identity_refused")
        .collect();
    assert_eq!(refused.len(), 1, "{}", h.body);
    assert_eq!(refused[0]["after"]["scanned_din"], "=G12349865432200");
    assert_eq!(refused[0]["after"]["code"], "identity_mismatch");
    // The barcode as the scanner reads it.
    let ok = lab.custody(&b, event("=G12349865432100")).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);

    // The web form asks for the scan and refuses it empty.
    let (_, tech_name) = lab.app.user_with(&["technician"]).await;
    let mut tech = crate::web::Browser::new(&lab.app);
    tech.sign_in(&tech_name, crate::support::USER_PASSWORD)
        .await;
    let form = tech.get(&format!("/batches/{b}/custody/new")).await;
    assert!(
        form.body.contains("Scan the DIN on the bag"),
        "{}",
        form.body
    );
    let token = crate::web::Browser::csrf(&form);
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
    let empty = tech
        .post(
            &format!("/batches/{b}/custody"),
            &[
                ("csrf", &token),
                ("scanned_din", ""),
                ("event", "stored"),
                ("occurred_at", &now),
                ("location", "LN2 tank 3"),
                ("party", "QC"),
            ],
        )
        .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        empty.body.contains("Scanned DIN is required"),
        "{}",
        empty.body
    );
    assert!(empty.body.contains("value=\"LN2 tank 3\""), "kept as typed");
    assert_eq!(lab.count("custody_events"), before + 1);

    // The label: a PDF with the batch, the eye-readable DIN and its check character.
    let label = tech.get(&format!("/batches/{b}/label")).await;
    assert_eq!(label.status, StatusCode::OK);
    assert_eq!(
        label.headers.get("content-type").unwrap(),
        "application/pdf"
    );
}
