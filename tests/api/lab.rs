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
}

pub fn days_ago(n: i64) -> String {
    (Utc::now() - Duration::days(n)).to_rfc3339()
}

impl Lab {
    /// Users plus the MSC product with its reference specification approved.
    pub async fn msc() -> Lab {
        Self::with(cellqc::demo::msc_product(), cellqc::demo::msc_spec()).await
    }

    pub async fn with(product: Value, spec: Value) -> Lab {
        let app = TestApp::spawn().await;
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

    /// Records a result as the technician, performed yesterday.
    pub async fn record(&self, batch: &str, code: &str, value: Value) -> Resp {
        self.record_with(batch, json!({"test_code": code, "value": value}))
            .await
    }

    pub async fn record_with(&self, batch: &str, fields: Value) -> Resp {
        let mut body = json!({"performed_at": days_ago(1)});
        for (k, v) in fields.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.app
            .post(
                &format!("/api/v1/batches/{batch}/results"),
                &self.tech,
                body,
            )
            .await
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
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let rows: Vec<N> = diesel::sql_query(format!("SELECT count(*) AS n FROM {table}"))
            .load(&mut self.app.conn())
            .unwrap();
        rows[0].n
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
