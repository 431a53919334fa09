//! Imports (API.md, "Imports are bounded"): the time of one import of an
//! export of 1 000 and of 10 000 rows, each against pgbench's bare import
//! of the same bytes (`sql/import_bare.sql`), and the other users' answers
//! while six technicians import at once, against their answers alone.

use crate::{Figures, app, token};
use cellqc::db::schema::products;
use cellqc::demo::DEMO_PASSWORD;
use cellqc::services::Actor;
use cellqc::services::batches::{NewBatchInput, create_batch};
use cellqc::services::users::{NewUserInput, create_user};
use chrono::{Duration as ChronoDuration, Utc};
use diesel::prelude::*;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Technicians importing at once (API.md: others are answered while six run).
pub const IMPORTERS: usize = 6;

/// Clients reading batch records meanwhile.
pub const READERS: usize = 4;

/// A cell counter's export of `rows` data rows, the batch's the last: viable
/// cells per bag and potency, the MSC panel's tests that need no
/// qualification or instrument.
pub fn export(batch_number: &str, rows: usize) -> String {
    let mut t = String::with_capacity(rows * 28 + 64);
    t.push_str("Sample,Viable cells per bag,Potency\n");
    for i in 1..rows {
        t.push_str(&format!("OTHER-{i:05},1.05e8,30\n"));
    }
    t.push_str(&format!("{batch_number},1.1e8,35\n"));
    t
}

/// An import's request: the batch and its body.
struct Import {
    batch: Uuid,
    body: String,
}

/// The accounts and batches the measurements use.
pub struct Seeded {
    /// The importing technicians' usernames.
    users: Vec<String>,
    /// The batches of the timed imports, at 1 k and at 10 k rows.
    one_k: Vec<Import>,
    ten_k: Vec<Import>,
    /// Each importer's batches for the concurrent run.
    busy: Vec<Vec<Import>>,
    /// Every batch created (pgbench's targets).
    pub all: Vec<Uuid>,
    /// The first technician (pgbench's actor).
    pub actor: Uuid,
}

fn body(batch_number: &str, rows: usize, performed_at: &str) -> String {
    serde_json::json!({
        "filename": "counter.csv",
        "content": export(batch_number, rows),
        "mapping": {"DOSE": "Viable cells per bag", "POT": "Potency"},
        "performed_at": performed_at,
    })
    .to_string()
}

/// Six technicians and a batch for every import to come: `timed` at each
/// size, and `busy_each` per importer for the concurrent run.
pub fn seed(conn: &mut PgConnection, timed: usize, busy_each: usize) -> anyhow::Result<Seeded> {
    let product: Uuid = products::table
        .filter(products::code.eq("UCMSC-INJ"))
        .select(products::id)
        .first(conn)?;
    let tag = Uuid::now_v7().simple().to_string();
    let tag = tag.get(24..).unwrap_or(&tag).to_owned();
    let mut users = Vec::new();
    let mut actors = Vec::new();
    for k in 0..IMPORTERS {
        let username = format!("imp{tag}{k}");
        let view = create_user(
            conn,
            None,
            &NewUserInput {
                username: username.clone(),
                full_name: format!("Import bench technician {k}"),
                email: format!("{username}@bench.invalid"),
                roles: vec!["technician".to_owned()],
                password: DEMO_PASSWORD.to_owned(),
                temporary: false,
                locale: cellqc::i18n::Locale::En,
            },
            Some("import bench"),
        )
        .map_err(app)?;
        let row = cellqc::db::schema::users::table
            .find(view.id)
            .select(cellqc::db::models::UserRow::as_select())
            .first(conn)?;
        actors.push(Actor::try_from(&row).map_err(app)?);
        users.push(username);
    }
    let performed = Utc::now().to_rfc3339();
    let mut all = Vec::new();
    let mut batch = |actor: &Actor, name: String, rows: usize| -> anyhow::Result<Import> {
        let number = format!("IMP-{tag}-{name}");
        let b = create_batch(
            conn,
            actor,
            &NewBatchInput {
                batch_number: number.clone(),
                product_id: product,
                manufactured_at: Utc::now() - ChronoDuration::days(5),
                expires_at: Utc::now() + ChronoDuration::days(60),
                ..NewBatchInput::default()
            },
        )
        .map_err(app)?;
        all.push(b.id);
        Ok(Import {
            batch: b.id,
            body: body(&number, rows, &performed),
        })
    };
    let first = actors
        .first()
        .ok_or_else(|| anyhow::anyhow!("no import technician was created"))?;
    let one_k = (0..timed)
        .map(|i| batch(first, format!("1K-{i}"), 1_000))
        .collect::<anyhow::Result<_>>()?;
    let ten_k = (0..timed)
        .map(|i| batch(first, format!("10K-{i}"), 10_000))
        .collect::<anyhow::Result<_>>()?;
    let mut busy = Vec::new();
    for (k, actor) in actors.iter().enumerate() {
        busy.push(
            (0..busy_each)
                .map(|i| batch(actor, format!("B{k}-{i}"), 10_000))
                .collect::<anyhow::Result<_>>()?,
        );
    }
    Ok(Seeded {
        users,
        one_k,
        ten_k,
        busy,
        all,
        actor: first.id,
    })
}

/// What the imports measured.
pub struct Measured {
    pub one_k: Figures,
    pub ten_k: Figures,
    pub readers_alone: Figures,
    pub readers_during: Figures,
    pub imports_during: Figures,
    /// Readers' answers that were 503 while the imports ran.
    pub unavailable_during: usize,
}

async fn send_import(client: &awc::Client, base: &str, token: &str, i: &Import) -> bool {
    client
        .post(format!("{base}/api/v1/batches/{}/results/import", i.batch))
        .bearer_auth(token)
        .content_type("application/json")
        .send_body(i.body.clone())
        .await
        .ok()
        .filter(|r| r.status().as_u16() == 201)
        .is_some()
}

/// One import after another, each timed.
async fn one_after_another(
    client: &awc::Client,
    base: &str,
    token: &str,
    imports: &[Import],
) -> Figures {
    let start = Instant::now();
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for i in imports {
        let t = Instant::now();
        if send_import(client, base, token, i).await {
            latencies.push(t.elapsed());
        } else {
            errors += 1;
        }
    }
    Figures::new(latencies, errors, start.elapsed())
}

/// Answers of a closed loop: latencies, failures, 503s.
type Tally = Rc<RefCell<(Vec<Duration>, usize, usize)>>;

/// `READERS` clients reading batch records until `until`.
fn readers(
    client: &awc::Client,
    base: &str,
    token: &str,
    paths: &Rc<Vec<String>>,
    until: Instant,
    tally: &Tally,
) -> Vec<actix_web::rt::task::JoinHandle<()>> {
    (0..READERS)
        .map(|r| {
            let (client, base, token) = (client.clone(), base.to_owned(), token.to_owned());
            let (paths, tally) = (paths.clone(), tally.clone());
            actix_web::rt::spawn(async move {
                let mut n = r;
                while Instant::now() < until {
                    let Some(path) = paths.get(n % paths.len().max(1)) else {
                        return;
                    };
                    n += READERS;
                    let t = Instant::now();
                    let status = client
                        .get(format!("{base}{path}"))
                        .bearer_auth(&token)
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0);
                    let mut d = tally.borrow_mut();
                    match status {
                        200 => d.0.push(t.elapsed()),
                        503 => {
                            d.1 += 1;
                            d.2 += 1;
                        }
                        _ => d.1 += 1,
                    }
                }
            })
        })
        .collect()
}

async fn read_for(
    client: &awc::Client,
    base: &str,
    token: &str,
    paths: &Rc<Vec<String>>,
    seconds: u64,
) -> (Figures, usize) {
    let tally: Tally = Rc::default();
    let start = Instant::now();
    let until = start + Duration::from_secs(seconds);
    futures_util::future::join_all(readers(client, base, token, paths, until, &tally)).await;
    let (latencies, errors, unavailable) = tally.take();
    (
        Figures::new(latencies, errors, start.elapsed()),
        unavailable,
    )
}

/// Drives the imports against the server at `base`.
pub fn measure(base: &str, seeded: &Seeded, seconds: u64) -> anyhow::Result<Measured> {
    actix_web::rt::System::new().block_on(async {
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(120))
            .finish();
        let mut tokens = Vec::new();
        for u in &seeded.users {
            tokens.push(token(&client, base, u).await?);
        }
        let reader = token(&client, base, "auditor").await?;
        let first = tokens.first().cloned().unwrap_or_default();
        // Unmeasured: the pool's connections made and their statements
        // prepared.
        if let (Some(a), Some(b)) = (seeded.one_k.first(), seeded.ten_k.first()) {
            send_import(&client, base, &first, a).await;
            send_import(&client, base, &first, b).await;
        }
        let one_k =
            one_after_another(&client, base, &first, seeded.one_k.get(1..).unwrap_or(&[])).await;
        let ten_k =
            one_after_another(&client, base, &first, seeded.ten_k.get(1..).unwrap_or(&[])).await;
        let paths: Rc<Vec<String>> = Rc::new(
            seeded
                .ten_k
                .iter()
                .map(|i| format!("/api/v1/batches/{}", i.batch))
                .collect(),
        );
        let (readers_alone, _) = read_for(&client, base, &reader, &paths, seconds).await;

        // Six technicians import 10 k-row exports back to back while the
        // readers read.
        let start = Instant::now();
        let until = start + Duration::from_secs(seconds);
        let tally: Tally = Rc::default();
        let reading = readers(&client, base, &reader, &paths, until, &tally);
        let imported: Tally = Rc::default();
        let importing: Vec<_> = seeded
            .busy
            .iter()
            .zip(tokens.iter())
            .map(|(batches, token)| {
                let (client, base, token, imported) = (
                    client.clone(),
                    base.to_owned(),
                    token.clone(),
                    imported.clone(),
                );
                let bodies: Vec<(Uuid, String)> =
                    batches.iter().map(|i| (i.batch, i.body.clone())).collect();
                actix_web::rt::spawn(async move {
                    for (batch, body) in bodies {
                        if Instant::now() >= until {
                            return;
                        }
                        let t = Instant::now();
                        let ok = send_import(&client, &base, &token, &Import { batch, body }).await;
                        let mut d = imported.borrow_mut();
                        if ok {
                            d.0.push(t.elapsed());
                        } else {
                            d.1 += 1;
                        }
                    }
                })
            })
            .collect();
        futures_util::future::join_all(reading).await;
        futures_util::future::join_all(importing).await;
        let elapsed = start.elapsed();
        let (latencies, errors, unavailable_during) = tally.take();
        let readers_during = Figures::new(latencies, errors, elapsed);
        let (latencies, errors, _) = imported.take();
        let imports_during = Figures::new(latencies, errors, elapsed);
        Ok(Measured {
            one_k,
            ten_k,
            readers_alone,
            readers_during,
            imports_during,
            unavailable_during,
        })
    })
}
