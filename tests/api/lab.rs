//! A QC lab ready to work: users of each role and the MSC product with an
//! effective specification, all made through the HTTP API.

use crate::support::{Resp, TestApp, USER_PASSWORD};
use actix_web::http::StatusCode;
use chrono::{Duration, Utc};
use serde_json::{Value, json};

pub struct Lab {
    pub app: TestApp,
    /// QA user who authors specifications.
    pub qa: String,
    /// A second QA user who approves them.
    pub qa2: String,
    pub tech: String,
    pub tech_id: String,
    pub reviewer: String,
    pub reviewer_id: String,
    pub product_id: String,
    pub spec_id: String,
    /// The calibrated instrument the technician uses for each test that
    /// names an instrument kind (test code, instrument id).
    pub instruments: Vec<(String, String)>,
    /// The instrument of each kind (kind, instrument id).
    kinds: Vec<(String, String)>,
    /// The test codes the technician is qualified for.
    qualified: Vec<String>,
}

pub fn days_ago(n: i64) -> String {
    (Utc::now() - Duration::days(n)).to_rfc3339()
}

impl Lab {
    /// Users plus the MSC product with its reference specification approved.
    pub async fn msc() -> Lab {
        Self::with(cellqc::demo::msc_product(), cellqc::demo::msc_spec()).await
    }

    /// Users, the product and its approved specification; the technician is
    /// qualified for every test that requires it, and each instrument kind
    /// the specification names has a calibrated instrument (as the demo lab).
    pub async fn with(product: Value, spec: Value) -> Lab {
        let mut lab = Self::bare(product, spec.clone()).await;
        lab.prepare_for(&spec).await;
        lab
    }

    /// Qualifies the technician for each test of `spec` that requires it,
    /// and gives each instrument kind it names a calibrated instrument
    /// (what the lab has already is kept).
    pub async fn prepare_for(&mut self, spec: &Value) {
        let controlled = cellqc::demo::controlled_tests(spec);
        let new: Vec<&str> = controlled
            .iter()
            .map(|(code, _)| code.as_str())
            .filter(|code| !self.qualified.iter().any(|q| q == code))
            .collect();
        if !new.is_empty() {
            self.qualify(&self.tech_id, &new).await;
        }
        self.qualified.extend(new.into_iter().map(str::to_owned));
        for (code, kind) in controlled {
            let Some(kind) = kind else { continue };
            if self.instrument_for(&code).is_some() {
                continue;
            }
            let id = match self.kinds.iter().find(|(k, _)| *k == kind) {
                Some((_, id)) => id.clone(),
                None => {
                    let id = self.calibrated_instrument(&kind).await;
                    self.kinds.push((kind, id.clone()));
                    id
                }
            };
            self.instruments.push((code, id));
        }
    }

    /// QA qualifies `user` for `codes` through the API (signed, audited),
    /// from a training completed 30 days ago: results performed earlier
    /// today (forms read whole minutes) are then covered.
    pub async fn qualify(&self, user: &str, codes: &[&str]) {
        let until = (Utc::now() + Duration::days(365)).to_rfc3339();
        let from = (Utc::now() - Duration::days(30)).to_rfc3339();
        for code in codes {
            let r = self
                .app
                .post(
                    &format!("/api/v1/users/{user}/qualifications"),
                    &self.qa,
                    json!({"test_code": code, "valid_from": from, "valid_until": until,
                           "password": USER_PASSWORD, "reason": "training record, observed assay"}),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{code}: {}", r.body);
        }
    }

    /// Qualifies `user` for every test of the lab that requires it.
    pub async fn qualify_all(&self, user: &str) {
        let codes: Vec<&str> = self.qualified.iter().map(String::as_str).collect();
        self.qualify(user, &codes).await;
    }

    /// A registered instrument of `kind`, calibrated 30 days ago and valid
    /// for 335 more.
    pub async fn calibrated_instrument(&self, kind: &str) -> String {
        let code = format!("LAB-{}", kind.to_uppercase().replace('_', "-"));
        let r = self
            .app
            .post(
                "/api/v1/instruments",
                &self.qa,
                json!({"code": code, "name": format!("{kind} of the lab"), "kind": kind}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let id = r.body["id"].as_str().unwrap().to_owned();
        let c = self
            .app
            .post(
                &format!("/api/v1/instruments/{id}/calibrations"),
                &self.tech,
                json!({"performed_at": days_ago(30), "outcome": "pass",
                       "valid_until": (Utc::now() + Duration::days(335)).to_rfc3339(),
                       "certificate": format!("CAL-{code}")}),
            )
            .await;
        assert_eq!(c.status, StatusCode::CREATED, "{}", c.body);
        id
    }

    /// A reagent lot of `code`, received by the technician and released by
    /// QA, in date for a year.
    pub async fn released_lot(&self, code: &str) -> String {
        let r = self
            .app
            .post(
                "/api/v1/materials",
                &self.tech,
                json!({"code": code, "name": format!("{code} reagent"), "lot_number": format!("{code}-LOT-1"),
                       "kind": "reagent", "expires_at": (Utc::now() + Duration::days(365)).to_rfc3339()}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let id = r.body["id"].as_str().unwrap().to_owned();
        let rel = self
            .app
            .post(
                &format!("/api/v1/materials/{id}/release"),
                &self.qa,
                json!({"password": USER_PASSWORD}),
            )
            .await;
        assert_eq!(rel.status, StatusCode::OK, "{}", rel.body);
        id
    }

    /// The instrument the lab uses for `test_code`, if it needs one.
    pub fn instrument_for(&self, test_code: &str) -> Option<&str> {
        self.instruments
            .iter()
            .find(|(c, _)| c == test_code)
            .map(|(_, id)| id.as_str())
    }

    /// Users, the product and its approved specification, nothing more: for
    /// tests of the qualification and instrument rules themselves.
    pub async fn bare(product: Value, spec: Value) -> Lab {
        Self::bare_on(TestApp::spawn().await, product, spec).await
    }

    /// [`Lab::with`] on a server the caller started.
    pub async fn on(app: TestApp, product: Value, spec: Value) -> Lab {
        let mut lab = Self::bare_on(app, product, spec.clone()).await;
        lab.prepare_for(&spec).await;
        lab
    }

    /// [`Lab::bare`] on a server the caller started.
    pub async fn bare_on(app: TestApp, product: Value, spec: Value) -> Lab {
        let (_, qa) = app.signed_in(&["qa"]).await;
        let (_, qa2) = app.signed_in(&["qa"]).await;
        let (tech_id, tech) = app.signed_in(&["technician"]).await;
        let (reviewer_id, reviewer) = app.signed_in(&["reviewer"]).await;
        let p = app.post("/api/v1/products", &qa, product).await;
        assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
        let product_id = p.body["id"].as_str().unwrap().to_owned();
        let spec_id = approved_spec(&app, &qa, &qa2, &product_id, spec).await;
        Lab {
            app,
            qa,
            qa2,
            tech,
            tech_id,
            reviewer,
            reviewer_id,
            product_id,
            spec_id,
            instruments: Vec::new(),
            kinds: Vec::new(),
            qualified: Vec::new(),
        }
    }

    /// A new batch of the lab's product.
    pub async fn batch(&self, number: &str) -> String {
        let r = self.create_batch(json!({"batch_number": number})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["id"].as_str().unwrap().to_owned()
    }

    /// `POST /batches` with defaults for what `fields` leaves out.
    pub async fn create_batch(&self, fields: Value) -> Resp {
        let mut body = json!({
            "product_id": self.product_id,
            "manufactured_at": days_ago(10),
            "expires_at": (Utc::now() + Duration::days(30)).to_rfc3339(),
        });
        for (k, v) in fields.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.app.post("/api/v1/batches", &self.tech, body).await
    }

    /// Records a result as the technician, performed now (after the
    /// technician's qualifications were granted) on the lab's instrument.
    pub async fn record(&self, batch: &str, code: &str, value: Value) -> Resp {
        self.record_with(batch, json!({"test_code": code, "value": value}))
            .await
    }

    pub async fn record_with(&self, batch: &str, fields: Value) -> Resp {
        let body = self.result_body(fields);
        self.app
            .post(
                &format!("/api/v1/batches/{batch}/results"),
                &self.tech,
                body,
            )
            .await
    }

    /// A result body: `fields`, performed now unless they say when, on the
    /// lab's instrument for the test unless they name one.
    pub fn result_body(&self, fields: Value) -> Value {
        let mut body = json!({"performed_at": Utc::now().to_rfc3339()});
        if let Some(id) = fields["test_code"]
            .as_str()
            .and_then(|c| self.instrument_for(c))
        {
            body["instrument_id"] = json!(id);
        }
        for (k, v) in fields.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    }

    /// Records and returns the new result's id, asserting 201.
    pub async fn recorded(&self, batch: &str, code: &str, value: Value) -> String {
        let r = self.record(batch, code, value).await;
        assert_eq!(r.status, StatusCode::CREATED, "{code}: {}", r.body);
        r.body["id"].as_str().unwrap().to_owned()
    }

    /// Reviews as the lab's reviewer.
    pub async fn review(&self, result: &str, decision: &str) -> Resp {
        self.app
            .post(
                &format!("/api/v1/results/{result}/review"),
                &self.reviewer,
                json!({"decision": decision, "password": USER_PASSWORD, "comment": "checked against raw data"}),
            )
            .await
    }

    /// Closes a deviation as QA.
    pub async fn close(&self, deviation: &str, conclusion: &str) -> Resp {
        self.app
            .post(
                &format!("/api/v1/deviations/{deviation}/close"),
                &self.qa,
                json!({"conclusion": conclusion, "root_cause": "pipetting error in the assay, documented in LIR-7",
                       "password": USER_PASSWORD}),
            )
            .await
    }

    /// A batch with every MSC result recorded, passing and reviewed, except
    /// the tests in `skip`.
    pub async fn tested_batch(&self, number: &str, skip: &[&str]) -> String {
        let b = self.batch(number).await;
        for (code, value) in cellqc::demo::msc_passing_values() {
            if skip.contains(&code) {
                continue;
            }
            let id = self.recorded(&b, code, value).await;
            let r = self.review(&id, "accept").await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        }
        b
    }

    /// `POST /batches/{id}/release` as `token`.
    pub async fn release(&self, batch: &str, token: &str, extra: Value) -> Resp {
        let mut body = json!({"password": USER_PASSWORD});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.app
            .post(&format!("/api/v1/batches/{batch}/release"), token, body)
            .await
    }

    /// The actions of the batch's history, oldest first, read as `token`.
    pub async fn history_actions(&self, batch: &str, token: &str) -> Vec<String> {
        let h = self
            .app
            .get(&format!("/api/v1/batches/{batch}/history"), token)
            .await;
        assert_eq!(h.status, StatusCode::OK, "{}", h.body);
        h.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The release readiness's blocker codes.
    pub async fn blockers(&self, batch: &str) -> Vec<String> {
        let r = self
            .app
            .get(
                &format!("/api/v1/batches/{batch}/release-readiness"),
                &self.tech,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body["blockers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["code"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Records a custody event as the technician.
    pub async fn custody(&self, batch: &str, fields: Value) -> Resp {
        let mut body = json!({"occurred_at": Utc::now().to_rfc3339(), "location": "Cleanroom B, LN2 tank 3",
                              "party": "Tess Technician"});
        for (k, v) in fields.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.app
            .post(
                &format!("/api/v1/batches/{batch}/custody"),
                &self.tech,
                body,
            )
            .await
    }

    /// The batch's status as stored.
    pub fn status(&self, batch: &str) -> String {
        use cellqc::db::schema::batches;
        use diesel::prelude::*;
        batches::table
            .find(uuid::Uuid::parse_str(batch).unwrap())
            .select(batches::status)
            .first(&mut self.app.conn())
            .unwrap()
    }

    /// The batch record.
    pub async fn batch_record(&self, batch: &str) -> Value {
        let r = self
            .app
            .get(&format!("/api/v1/batches/{batch}"), &self.tech)
            .await;
        assert_eq!(r.status, StatusCode::OK);
        r.body
    }

    /// Count of rows in `table` (for "nothing was written" checks).
    pub fn count(&self, table: &str) -> i64 {
        self.app.count(table)
    }
}

/// Creates and approves a specification; returns its id.
pub async fn approved_spec(
    app: &TestApp,
    author: &str,
    approver: &str,
    product_id: &str,
    spec: Value,
) -> String {
    let s = app
        .post(
            &format!("/api/v1/products/{product_id}/specifications"),
            author,
            spec,
        )
        .await;
    assert_eq!(s.status, StatusCode::CREATED, "{}", s.body);
    let spec_id = s.body["id"].as_str().unwrap().to_owned();
    let a = app
        .post(
            &format!("/api/v1/specifications/{spec_id}/approve"),
            approver,
            json!({"password": USER_PASSWORD}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    spec_id
}

/// `spec` without any qualification or instrument requirement, for tests
/// that set exactly the ones they exercise.
pub fn uncontrolled(mut spec: Value) -> Value {
    for t in spec["tests"].as_array_mut().unwrap() {
        let t = t.as_object_mut().unwrap();
        t.remove("qualification_required");
        t.remove("instrument_kind");
    }
    spec
}
