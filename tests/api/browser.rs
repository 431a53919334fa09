//! The web interface in a real browser: headless Chromium driven over
//! WebDriver (Debian's `chromium` and `chromium-driver`; nothing downloads a
//! browser). With `CELLQC_SCREENSHOT_DIR` set, screenshots of the main pages
//! are written there (that is how `docs/screenshots/` is made).

use crate::lab::Lab;
use crate::support::USER_PASSWORD;
use actix_web::http::StatusCode;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Driver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
    downloads: tempfile::TempDir,
}

impl Drop for Driver {
    /// Ends chromedriver and every browser it started, also when a test
    /// failed before closing its session: they share chromedriver's process
    /// group.
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

fn chromedriver() -> Driver {
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "the browser tests need Debian's chromium: apt-get install chromium chromium-driver"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the browser tests need chromedriver: apt-get install chromium chromium-driver");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Driver {
        child,
        port,
        _profile: tempfile::tempdir().unwrap(),
        downloads: tempfile::tempdir().unwrap(),
    }
}

async fn browser(d: &Driver, width: u32, height: u32) -> Client {
    // The test binary links two rustls crypto providers (lettre's and the
    // WebDriver client's); name one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let profile = tempfile::tempdir().unwrap().keep();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                format!("--window-size={width},{height}"),
                format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": {
                "download.default_directory": d.downloads.path(),
                "download.prompt_for_download": false,
            },
        }),
    );
    ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", d.port))
        .await
        .unwrap()
}

async fn shot(c: &Client, name: &str) {
    if let Ok(dir) = std::env::var("CELLQC_SCREENSHOT_DIR") {
        let png = c.screenshot().await.unwrap();
        std::fs::write(std::path::Path::new(&dir).join(format!("{name}.png")), png).unwrap();
    }
}

async fn fill(c: &Client, css: &str, text: &str) {
    let e = c.find(Locator::Css(css)).await.unwrap();
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Ticks every result on a batch's review page and chooses to accept:
/// nothing is ticked or chosen for the reviewer.
async fn accept_every_result(c: &Client) {
    for e in c
        .find_all(Locator::Css("input[name=result_ids]"))
        .await
        .unwrap()
    {
        e.click().await.unwrap();
    }
    click(c, "input[name=decision][value=accept]").await;
}

/// The statement a signing form shows, as the reader sees it (the boxes
/// the style sheet does not hide).
async fn shown_meaning(c: &Client) -> String {
    c.execute(
        "return Array.from(document.querySelectorAll('p.meaning'))\
           .filter(p => getComputedStyle(p).display !== 'none')\
           .map(p => p.innerText).join(' | ');",
        vec![],
    )
    .await
    .unwrap()
    .as_str()
    .unwrap()
    .to_owned()
}

/// Enters a result's value: typed for a measured test, chosen among the
/// options (shown in the reader's words) for a test with options.
async fn enter_value(c: &Client, code: &str, value: &str) {
    let choice = format!("fieldset.value-options[data-test='{code}'] input[value='{value}']");
    match c.find(Locator::Css(&choice)).await {
        Ok(e) if e.is_displayed().await.unwrap_or(false) => e.click().await.unwrap(),
        _ => fill(c, "input[name=value]", value).await,
    }
}

async fn submit(c: &Client, form_css: &str) {
    c.find(Locator::Css(&format!("{form_css} button[type=submit]")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Waits until the browser's address satisfies `ok`.
async fn wait_until_url(c: &Client, what: &str, ok: impl Fn(&str) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let url = c.current_url().await.unwrap();
        if ok(url.as_str()) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still on {url}, waiting for {what}"
        );
        tokio_sleep(50).await;
    }
}

/// Waits until the browser is on a page whose address contains `part`, so an
/// element found next is not one of the page being left.
async fn wait_for_url(c: &Client, part: &str) {
    wait_until_url(c, part, |u| u.contains(part)).await;
}

/// Waits until the browser has left every page whose address contains
/// `part`: the form posted and its answer arrived.
async fn wait_to_leave(c: &Client, part: &str) {
    wait_until_url(c, &format!("an address without {part}"), |u| {
        !u.contains(part)
    })
    .await;
}

/// Waits for an element of the page the last click leads to.
async fn wait_for(c: &Client, css: &str) {
    c.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("waiting for {css}: {e}"));
}

async fn sign_in(c: &Client, base: &str, user: &str) {
    c.goto(&format!("{base}/login")).await.unwrap();
    fill(c, "input[name=username]", user).await;
    fill(c, "input[name=password]", USER_PASSWORD).await;
    submit(c, "form[action='/login']").await;
    wait_for(c, "form[action='/logout']").await;
    let src = c.source().await.unwrap();
    assert!(src.contains("Sign out"), "signed in as {user}: {src}");
}

async fn sign_out(c: &Client) {
    submit(c, "form[action='/logout']").await;
    wait_for(c, "form[action='/login']").await;
}

#[actix_web::test]
async fn technician_reviewer_qa_and_auditor_work_through_the_browser() {
    let lab = Lab::msc().await;
    let app = &lab.app;
    let base = app.address.clone();
    let batch = lab
        .create_batch(json!({"batch_number": "UCMSC-2026-0100", "donor_din": "G123498654321H", "intended_recipient": "PT-0042"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (tech_id, tech) = app.user_with(&["technician"]).await;
    let (_, reviewer) = app.user_with(&["reviewer"]).await;
    let (both_id, both) = app.user_with(&["technician", "reviewer"]).await;
    lab.qualify_all(&tech_id).await;
    lab.qualify_all(&both_id).await;
    let (_, qa) = app.user_with(&["qa"]).await;
    let (_, auditor) = app.user_with(&["auditor"]).await;
    let d = chromedriver();
    let c = browser(&d, 1280, 800).await;

    // The technician records the MSC panel.
    sign_in(&c, &base, &tech).await;
    c.goto(&format!("{base}/batches")).await.unwrap();
    fill(&c, "input[name=q]", "UCMSC-2026-0100").await;
    submit(&c, "form[role=search]").await;
    wait_for_url(&c, "q=UCMSC-2026-0100").await;
    c.find(Locator::LinkText("UCMSC-2026-0100"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The form's "performed at" defaults to now (UTC).
    for (i, (code, value)) in cellqc::demo::msc_passing_values().into_iter().enumerate() {
        c.goto(&format!("{base}/batches/{batch}/results/new"))
            .await
            .unwrap();
        c.find(Locator::Css("select[name=test_code]"))
            .await
            .unwrap()
            .select_by_value(code)
            .await
            .unwrap();
        let v = value
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| value.to_string());
        enter_value(&c, code, &v).await;
        if let Some(id) = lab.instrument_for(code) {
            select(&c, "select[name=instrument_id]", id).await;
        }
        if i == 0 {
            shot(&c, "record-result").await;
        }
        submit(&c, "form[action$='/results']").await;
        wait_for(&c, "#recorded").await;
        let src = c.source().await.unwrap();
        assert!(
            src.contains("Result recorded:") && src.contains("PASS"),
            "{code}: {src}"
        );
    }
    shot(&c, "batch-after-results").await;
    sign_out(&c).await;

    // A reviewer who also performed a result is refused on the page.
    sign_in(&c, &base, &both).await;
    c.goto(&format!("{base}/batches/{batch}/results/new"))
        .await
        .unwrap();
    c.find(Locator::Css("select[name=test_code]"))
        .await
        .unwrap()
        .select_by_value("CD73")
        .await
        .unwrap();
    fill(&c, "input[name=value]", "97.0").await;
    select(
        &c,
        "select[name=instrument_id]",
        lab.instrument_for("CD73").unwrap(),
    )
    .await;
    fill(&c, "input[name=reason]", "re-gated").await;
    let own = lab.batch_record(&batch).await["results"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    c.find(Locator::Css("select[name=replaces_result_id]"))
        .await
        .unwrap()
        .select_by_value(&own)
        .await
        .unwrap();
    submit(&c, "form[action$='/results']").await;
    wait_for(&c, "#recorded").await;
    let mine = lab.batch_record(&batch).await["results"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    c.goto(&format!("{base}/results/{mine}/review"))
        .await
        .unwrap();
    click(&c, "input[name=decision][value=accept]").await;
    fill(&c, "input[name=password]", USER_PASSWORD).await;
    submit(&c, "form[action$='/review']").await;
    wait_for(&c, "#refusal").await;
    let refused = c
        .find(Locator::Css("#refusal"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(refused.contains("you performed this result"), "{refused}");
    shot(&c, "refusal-self-review").await;
    sign_out(&c).await;

    // The reviewer works through the queue with the signature dialog.
    sign_in(&c, &base, &reviewer).await;
    let mut reviewed = 0;
    loop {
        c.goto(&format!("{base}/review")).await.unwrap();
        if reviewed == 0 {
            shot(&c, "review-queue").await;
        }
        let Ok(link) = c.find(Locator::LinkText("Review")).await else {
            break;
        };
        link.click().await.unwrap();
        click(&c, "input[name=decision][value=accept]").await;
        if reviewed == 0 {
            shot(&c, "review-signature").await;
        }
        fill(&c, "input[name=password]", USER_PASSWORD).await;
        submit(&c, "form[action$='/review']").await;
        // Signed: back to the queue (a refusal stays on the form, and the
        // wait fails).
        wait_to_leave(&c, "/results/").await;
        reviewed += 1;
        assert!(reviewed <= 20, "the queue empties");
    }
    assert_eq!(reviewed, 14);
    sign_out(&c).await;

    // QA signs the release.
    sign_in(&c, &base, &qa).await;
    c.goto(&format!("{base}/batches/{batch}/release"))
        .await
        .unwrap();
    shot(&c, "release").await;
    let meaning = c
        .find(Locator::Css("form[action$='/release'] .meaning"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(meaning.contains("I approve this batch for release"));
    fill(
        &c,
        "form[action$='/release'] input[name=comment]",
        "meets specification 1.0",
    )
    .await;
    fill(
        &c,
        "form[action$='/release'] input[name=password]",
        USER_PASSWORD,
    )
    .await;
    submit(&c, "form[action$='/release']").await;
    wait_for(&c, ".status.released").await;
    assert_eq!(lab.status(&batch), "released");
    shot(&c, "batch-released").await;
    sign_out(&c).await;

    // The auditor downloads the CSV history.
    sign_in(&c, &base, &auditor).await;
    c.goto(&format!("{base}/batches/{batch}/history"))
        .await
        .unwrap();
    let status = c
        .find(Locator::Css("#chain-status"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(status.contains("verifies"), "{status}");
    shot(&c, "history").await;
    c.find(Locator::LinkText("Download CSV"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let csv = loop {
        let found = std::fs::read_dir(d.downloads.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "csv"));
        if let Some(p) = found {
            break std::fs::read_to_string(p).unwrap();
        }
        assert!(Instant::now() < deadline, "the CSV was not downloaded");
        tokio_sleep(200).await;
    };
    assert!(csv.starts_with("\u{feff}seq,at,actor_id"));
    assert!(csv.contains("batch.released") && csv.contains("result.reviewed"));
    c.goto(&format!("{base}/batches")).await.unwrap();
    shot(&c, "batch-list").await;
    c.close().await.unwrap();

    // A 768 px wide tablet shows the batch page without horizontal scrolling of the page.
    let t = browser(&d, 768, 1024).await;
    sign_in(&t, &base, &qa).await;
    t.goto(&format!("{base}/batches/{batch}")).await.unwrap();
    let overflow = t
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1;",
            vec![],
        )
        .await
        .unwrap();
    shot(&t, "batch-tablet").await;
    t.close().await.unwrap();
    assert_eq!(overflow, json!(true), "usable at 768 px");
}

async fn tokio_sleep(ms: u64) {
    actix_web::rt::time::sleep(Duration::from_millis(ms)).await;
}

async fn text_of(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn select(c: &Client, css: &str, value: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .select_by_value(value)
        .await
        .unwrap();
}

/// A reviewer's page chooses nothing: no result ticked, no decision
/// chosen, and the statement shown is the one the reviewer chooses. A
/// rejection without a reason comes back as it was chosen, nothing signed;
/// with its reason it is signed, the signature keeping the rejection's own
/// statement.
#[actix_web::test]
async fn nothing_is_chosen_for_a_reviewer_and_a_rejection_states_and_signs_a_rejection() {
    let lab = Lab::msc().await;
    let app = &lab.app;
    let base = app.address.clone();
    let batch = lab.batch("UCMSC-REVIEW-REJECT").await;
    // On the lab's flow cytometer (the body names it), with a stain lot.
    let stain = lab.released_lot("7AAD").await;
    let r = lab
        .record_with(
            &batch,
            json!({"test_code": "VIAB", "value": "91.0", "material_ids": [stain]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let result = r.body["id"].as_str().unwrap().to_owned();
    let (_, reviewer) = app.user_with(&["reviewer"]).await;
    let signatures = lab.count("signatures");
    let d = chromedriver();
    let c = browser(&d, 1100, 1000).await;
    sign_in(&c, &base, &reviewer).await;
    c.goto(&format!("{base}/batches/{batch}/review"))
        .await
        .unwrap();
    wait_for(&c, "table.review").await;
    for chosen in [
        "input[name=result_ids]:checked",
        "input[name=decision]:checked",
    ] {
        assert!(
            c.find(Locator::Css(chosen)).await.is_err(),
            "{chosen}: nothing is chosen for the reviewer"
        );
    }
    let meaning = shown_meaning(&c).await;
    assert!(
        meaning.contains("the statement you choose above") && !meaning.contains("accept it"),
        "{meaning}"
    );
    // The instrument and the lot as stored with the result.
    let row = text_of(&c, "table.review tbody tr").await;
    assert!(
        row.contains("LAB-FLOW-CYTOMETER – flow_cytometer of the lab")
            && row.contains("7AAD lot 7AAD-LOT-1 – 7AAD reagent"),
        "{row}"
    );

    // Choosing to reject: the statement follows the choice.
    click(&c, "input[name=result_ids]").await;
    click(&c, "input[name=decision][value=reject]").await;
    let meaning = shown_meaning(&c).await;
    assert_eq!(
        meaning,
        "By signing you state: \u{201c}I have reviewed this result and reject it\u{201d}"
    );
    shot(&c, "review-reject-chosen").await;

    // Without a reason: refused, the choice kept, nothing signed.
    fill(&c, "input[name=password]", USER_PASSWORD).await;
    submit(&c, "form[action$='/review']").await;
    wait_for(&c, "#refusal").await;
    assert!(
        c.find(Locator::Css("input[name=decision][value=reject]:checked"))
            .await
            .is_ok()
    );
    assert!(
        c.find(Locator::Css("input[name=result_ids]:checked"))
            .await
            .is_ok()
    );
    assert_eq!(lab.count("signatures"), signatures, "nothing signed");

    // With the reason: signed as a rejection, in the rejection's words.
    fill(&c, "textarea[name=comment]", "gating drawn around debris").await;
    fill(&c, "input[name=password]", USER_PASSWORD).await;
    submit(&c, "form[action$='/review']").await;
    wait_for(&c, "#reviewed").await;
    #[derive(diesel::QueryableByName)]
    struct Signed {
        #[diesel(sql_type = diesel::sql_types::Text)]
        meaning: String,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        statement: Option<String>,
    }
    use diesel::RunQueryDsl;
    let signed: Vec<Signed> =
        diesel::sql_query("SELECT meaning, statement FROM signatures WHERE record_id = $1")
            .bind::<diesel::sql_types::Uuid, _>(uuid::Uuid::parse_str(&result).unwrap())
            .load(&mut app.conn())
            .unwrap();
    assert_eq!(signed.len(), 1);
    assert_eq!(signed[0].meaning, "review_rejected");
    assert_eq!(
        signed[0].statement.as_deref(),
        Some("I have reviewed this result and reject it")
    );
    c.close().await.unwrap();
}

/// The whole lifecycle through pages only (the product and its approved
/// specification come from the lab): start a batch, record the panel with an
/// OOS, close it as an invalid test, retest, review every result with one
/// signature, release, print the label, scan it at custody, and read the
/// history.
#[actix_web::test]
async fn the_whole_lifecycle_works_through_the_pages_alone() {
    let lab = Lab::msc().await;
    let app = &lab.app;
    let base = app.address.clone();
    let (tech_id, tech) = app.user_with(&["technician"]).await;
    lab.qualify_all(&tech_id).await;
    let (_, reviewer) = app.user_with(&["reviewer"]).await;
    let (_, qa) = app.user_with(&["qa"]).await;
    let (_, auditor) = app.user_with(&["auditor"]).await;
    let d = chromedriver();
    let c = browser(&d, 1024, 900).await;

    // The technician starts a batch from the work list.
    sign_in(&c, &base, &tech).await;
    shot(&c, "home-technician").await;
    c.find(Locator::LinkText("Start a batch"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_url(&c, "/batches/new").await;
    fill(&c, "input[name=batch_number]", "UCMSC-2026-0200").await;
    let expires = (chrono::Utc::now() + chrono::Duration::days(30))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    c.execute(
        "document.querySelector('input[name=expires_at]').value = arguments[0];",
        vec![json!(expires)],
    )
    .await
    .unwrap();
    fill(&c, "input[name=donor_din]", "G123498654321H").await;
    fill(&c, "input[name=intended_recipient]", "PT-0042").await;
    shot(&c, "batch-new").await;
    submit(&c, "form[action='/batches']").await;
    wait_for(&c, "#to-do").await;
    shot(&c, "batch-checklist").await;
    let batch = c
        .current_url()
        .await
        .unwrap()
        .path()
        .trim_start_matches("/batches/")
        .to_owned();

    // The panel: each save comes back on the next missing test; ENDO fails.
    c.find(Locator::Css("#to-do a.button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&c, "select[name=test_code]").await;
    for _ in 0..14 {
        let code = c
            .find(Locator::Css("select[name=test_code]"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .unwrap();
        let value = if code == "ENDO" {
            "0.9".to_owned()
        } else {
            let v = cellqc::demo::msc_passing_values()
                .into_iter()
                .find(|(c, _)| *c == code)
                .unwrap()
                .1;
            v.as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| v.to_string())
        };
        enter_value(&c, &code, &value).await;
        // The cytometer chosen for the last flow test stays chosen.
        let chosen = c
            .find(Locator::Css("select[name=instrument_id]"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default();
        match lab.instrument_for(&code) {
            Some(id) if chosen != id => select(&c, "select[name=instrument_id]", id).await,
            _ => {}
        }
        let before = c.current_url().await.unwrap().to_string();
        submit(&c, "form[action$='/results']").await;
        wait_until_url(&c, "the next page", |u| u != before).await;
        wait_for(&c, "#recorded").await;
        if code == "ENDO" {
            assert!(
                text_of(&c, "#recorded")
                    .await
                    .contains("An OOS investigation was opened")
            );
        }
    }
    assert!(
        c.current_url().await.unwrap().path().ends_with(&batch),
        "the last save leads to the batch"
    );
    sign_out(&c).await;

    // QA closes the OOS as an invalid test; a wrong password keeps the root cause.
    sign_in(&c, &base, &qa).await;
    let home = c.source().await.unwrap();
    assert!(
        home.contains("Out of specification") || home.contains("OOS"),
        "the open OOS on QA's work list"
    );
    c.goto(&format!("{base}/batches/{batch}/deviations"))
        .await
        .unwrap();
    select(&c, "select[name=conclusion]", "invalid_test").await;
    fill(
        &c,
        "textarea[name=root_cause]",
        "pipette not calibrated, LIR-7",
    )
    .await;
    fill(
        &c,
        "form[action$='/close'] input[name=password]",
        "not-the-password",
    )
    .await;
    submit(&c, "form[action$='/close']").await;
    wait_for(&c, "#refusal").await;
    assert_eq!(
        c.find(Locator::Css("textarea[name=root_cause]"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("pipette not calibrated, LIR-7")
    );
    fill(
        &c,
        "form[action$='/close'] input[name=password]",
        USER_PASSWORD,
    )
    .await;
    submit(&c, "form[action$='/close']").await;
    wait_to_leave(&c, "/close").await;
    sign_out(&c).await;

    // The technician retests ENDO from the checklist.
    sign_in(&c, &base, &tech).await;
    c.goto(&format!("{base}/batches/{batch}")).await.unwrap();
    c.find(Locator::Css("#to-do a.button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&c, "select[name=test_code]").await;
    fill(&c, "input[name=value]", "0.12").await;
    submit(&c, "form[action$='/results']").await;
    wait_for(&c, "#recorded").await;
    sign_out(&c).await;

    // The reviewer signs all fourteen current results at once.
    sign_in(&c, &base, &reviewer).await;
    c.find(Locator::Css(&format!("a[href='/batches/{batch}/review']")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&c, "table.review").await;
    assert!(
        c.source()
            .await
            .unwrap()
            .contains("a retest after deviation")
    );
    accept_every_result(&c).await;
    shot(&c, "review-batch").await;
    fill(&c, "input[name=password]", USER_PASSWORD).await;
    submit(&c, "form[action$='/review']").await;
    wait_for(&c, "#reviewed").await;
    assert!(
        text_of(&c, "#reviewed")
            .await
            .starts_with("14 results reviewed")
    );
    sign_out(&c).await;

    // QA releases from the work list.
    sign_in(&c, &base, &qa).await;
    c.find(Locator::Css(&format!("a[href='/batches/{batch}/release']")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&c, "#you").await;
    assert!(
        text_of(&c, "#you")
            .await
            .starts_with("You may sign the release")
    );
    shot(&c, "release-may-sign").await;
    fill(
        &c,
        "form[action$='/release'] input[name=password]",
        USER_PASSWORD,
    )
    .await;
    submit(&c, "form[action$='/release']").await;
    wait_for(&c, "#status-said").await;
    assert_eq!(lab.status(&batch), "released");
    shot(&c, "batch-released-status").await;
    sign_out(&c).await;

    // Custody: another bag's DIN is refused; this one's is accepted.
    sign_in(&c, &base, &tech).await;
    c.goto(&format!("{base}/batches/{batch}/custody/new"))
        .await
        .unwrap();
    fill(&c, "input[name=scanned_din]", "=G12349865432200").await;
    select(&c, "select[name=event]", "shipped").await;
    fill(&c, "input[name=location]", "Dispatch").await;
    fill(&c, "input[name=party]", "Courier").await;
    fill(&c, "input[name=temperature_c]", "4").await;
    submit(&c, "form[action$='/custody']").await;
    wait_for(&c, "#refusal").await;
    let refusal = text_of(&c, "#refusal").await;
    assert!(refusal.contains("not this batch's donation"), "{refusal}");
    shot(&c, "custody-wrong-bag").await;
    let before = lab.count("custody_events");
    assert_eq!(before, 0, "nothing recorded");
    fill(&c, "input[name=scanned_din]", "=G12349865432100").await;
    // A quick double submit: the browser sends the same form twice at once;
    // the event is recorded once and both are shown the first outcome.
    let statuses = c
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             const f = document.querySelector(\"form[action$='/custody']\");\
             const send = () => fetch(f.action, {method: 'POST', redirect: 'manual',\
               body: new URLSearchParams(new FormData(f))}).then(r => r.type);\
             Promise.all([send(), send()]).then(done);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(statuses, json!(["opaqueredirect", "opaqueredirect"]));
    assert_eq!(lab.count("custody_events"), 1, "recorded once");
    c.goto(&format!("{base}/batches/{batch}")).await.unwrap();
    sign_out(&c).await;

    // The auditor reads the history as sentences.
    sign_in(&c, &base, &auditor).await;
    c.goto(&format!("{base}/batches/{batch}/history"))
        .await
        .unwrap();
    wait_for(&c, "#chain-status").await;
    let history = c.source().await.unwrap();
    for needle in [
        "Result ENDO 0.9 EU/mL recorded (FAIL)",
        "Deviation closed (signed)",
        "accepted in second-person review (signed)",
        "Custody: shipped at Dispatch by Courier",
        "A signature was refused",
    ] {
        assert!(
            history.contains(needle),
            "{needle} in the history: {}",
            text_of(&c, "main").await
        );
    }
    shot(&c, "history-sentences").await;
    c.close().await.unwrap();
}

/// A technician imports a FlowJo table export on the batch's import page:
/// the product's saved mapping fills the columns, a file with one unreadable
/// value is previewed with its refusal and nothing to confirm, the corrected
/// file previews every row passing, and one confirm records them all.
#[actix_web::test]
async fn a_technician_imports_a_flowjo_export_on_the_import_page() {
    let lab = Lab::msc().await;
    let app = &lab.app;
    let base = app.address.clone();
    let (tech_id, tech) = app.user_with(&["technician"]).await;
    lab.qualify_all(&tech_id).await;
    let saved = app
        .post(
            &format!("/api/v1/products/{}/import-mappings", lab.product_id),
            &lab.qa,
            json!({"name": "FlowJo MSC panel table", "mapping": cellqc::demo::flowjo_msc_mapping()}),
        )
        .await;
    assert_eq!(saved.status, StatusCode::CREATED, "{}", saved.body);
    let mapping_id = saved.body["id"].as_str().unwrap().to_owned();
    let batch = lab.batch("UCMSC-2026-0301").await;
    let export = String::from_utf8(include_bytes!("../data/flowjo-msc-panel.csv").to_vec())
        .unwrap()
        .replace("UCMSC-2026-9001", "UCMSC-2026-0301");
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("MSC panel broken.csv");
    std::fs::write(&broken, export.replace(",98.7,99.2,", ",98.7,n/a,")).unwrap();
    let good = dir.path().join("MSC panel 2026-12-02.csv");
    std::fs::write(&good, &export).unwrap();

    let d = chromedriver();
    let c = browser(&d, 1100, 1400).await;
    sign_in(&c, &base, &tech).await;
    c.goto(&format!("{base}/batches/{batch}")).await.unwrap();
    c.find(Locator::LinkText("Import from an export"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_url(&c, "/results/import").await;
    select(&c, "select[name=mapping_id]", &mapping_id).await;
    submit(&c, "form[method=get]").await;
    wait_for_url(&c, "mapping_id=").await;
    let cd73 = c
        .find(Locator::Css("input[name='map.CD73']"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(cd73.contains("CD73+ | Freq. of Parent"), "{cd73}");
    let instrument = lab.instrument_for("CD73").unwrap().to_owned();
    select(&c, "select[name=instrument_id]", &instrument).await;
    let upload = |path: std::path::PathBuf| {
        let c = c.clone();
        async move {
            c.find(Locator::Css("input[name=file]"))
                .await
                .unwrap()
                .send_keys(path.to_str().unwrap())
                .await
                .unwrap();
            c.find(Locator::Css("button[value=preview]"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
        }
    };

    // One unreadable value: the row says why, nothing can be confirmed.
    upload(broken).await;
    wait_for(&c, "#preview").await;
    let preview = text_of(&c, "#preview").await;
    assert!(preview.contains("REFUSED"), "{preview}");
    assert!(
        preview.contains("1 of 9 rows would be refused"),
        "{preview}"
    );
    assert!(c.find(Locator::Css("#confirm")).await.is_err());
    shot(&c, "import-refused").await;

    // The corrected export: every row passes; one confirm records them.
    upload(good).await;
    wait_for(&c, "#confirm").await;
    let preview = text_of(&c, "#preview").await;
    assert!(preview.contains("Every row can be recorded"), "{preview}");
    assert_eq!(lab.count("results"), 0, "a preview records nothing");
    shot(&c, "import-preview").await;
    c.find(Locator::Css("#confirm"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&c, "#imported").await;
    assert!(
        text_of(&c, "#imported")
            .await
            .contains("9 results recorded from MSC panel 2026-12-02.csv")
    );
    shot(&c, "import-recorded").await;
    assert_eq!(lab.count("results"), 9);
    assert_eq!(lab.count("source_files"), 1);
    c.close().await.unwrap();
}

/// Signs in a user whose pages are in Chinese.
async fn sign_in_zh(c: &Client, base: &str, user: &str) {
    c.goto(&format!("{base}/login")).await.unwrap();
    fill(c, "input[name=username]", user).await;
    fill(c, "input[name=password]", USER_PASSWORD).await;
    submit(c, "form[action='/login']").await;
    wait_for(c, "form[action='/logout']").await;
    let src = c.source().await.unwrap();
    assert!(
        src.contains("退出"),
        "signed in as {user} in Chinese: {src}"
    );
    assert!(src.contains("<html lang=\"zh-CN\">"), "{src}");
}

#[actix_web::test]
async fn a_chinese_technician_reviewer_and_qp_record_review_and_release_in_chinese() {
    let lab = Lab::msc().await;
    let app = &lab.app;
    let base = app.address.clone();
    let batch = lab
        .create_batch(json!({"batch_number": "UCMSC-2026-0200"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (tech_id, tech) = app.user_with(&["technician"]).await;
    lab.qualify_all(&tech_id).await;
    let (_, reviewer) = app.user_with(&["reviewer"]).await;
    let (_, qa) = app.user_with(&["qa"]).await;
    for who in [&reviewer, &qa] {
        let token = app.login(who, USER_PASSWORD).await;
        let set = app
            .post("/api/v1/auth/locale", &token, json!({"locale": "zh-CN"}))
            .await;
        assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    }
    let d = chromedriver();
    let c = browser(&d, 1280, 900).await;

    // The technician reads English, then chooses Chinese in the header.
    sign_in(&c, &base, &tech).await;
    select(&c, "select#locale", "zh-CN").await;
    submit(&c, "form.lang").await;
    wait_for(&c, "html[lang='zh-CN']").await;
    assert!(c.source().await.unwrap().contains("我的工作"));
    for (i, (code, value)) in cellqc::demo::msc_passing_values().into_iter().enumerate() {
        c.goto(&format!("{base}/batches/{batch}/results/new?test={code}"))
            .await
            .unwrap();
        let v = value
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| value.to_string());
        if code == "STER" {
            // Sterility is chosen in Chinese and posted as its code.
            let options = text_of(&c, "fieldset.value-options[data-test='STER']").await;
            assert!(options.contains("无菌生长"), "{options}");
            shot(&c, "zh-record-sterility").await;
        }
        enter_value(&c, code, &v).await;
        if let Some(id) = lab.instrument_for(code) {
            select(&c, "select[name=instrument_id]", id).await;
        }
        if i == 0 {
            shot(&c, "zh-record-result").await;
        }
        submit(&c, "form[action$='/results']").await;
        wait_for(&c, "#recorded").await;
        let said = text_of(&c, "#recorded").await;
        assert!(
            said.contains("结果已记录") && said.contains("合格"),
            "{code}: {said}"
        );
    }
    // A value that is not a number is refused in Chinese, naming the field.
    c.goto(&format!("{base}/batches/{batch}/results/new?test=VIAB"))
        .await
        .unwrap();
    fill(&c, "input[name=value]", "n/a").await;
    submit(&c, "form[action$='/results']").await;
    wait_for(&c, "#refusal").await;
    let refused = text_of(&c, "#refusal").await;
    assert!(refused.contains("未保存任何内容"), "{refused}");
    shot(&c, "zh-record-refused").await;
    c.goto(&format!("{base}/batches/{batch}")).await.unwrap();
    shot(&c, "zh-batch-after-results").await;
    sign_out(&c).await;

    // The reviewer signs every result at once, reading the Chinese statement.
    sign_in_zh(&c, &base, &reviewer).await;
    c.goto(&format!("{base}/batches/{batch}/review"))
        .await
        .unwrap();
    wait_for(&c, "table.review").await;
    accept_every_result(&c).await;
    let meaning = shown_meaning(&c).await;
    assert!(meaning.contains("我已审核此结果并予以接受"), "{meaning}");
    shot(&c, "zh-review-batch").await;
    fill(&c, "input[name=password]", USER_PASSWORD).await;
    submit(&c, "form[action$='/review']").await;
    wait_for(&c, "#reviewed").await;
    let reviewed = text_of(&c, "#reviewed").await;
    assert!(reviewed.contains("已以您的签名审核"), "{reviewed}");
    sign_out(&c).await;

    // The QP releases, the signature keeping the Chinese statement.
    sign_in_zh(&c, &base, &qa).await;
    c.goto(&format!("{base}/batches/{batch}/release"))
        .await
        .unwrap();
    wait_for(&c, "#you").await;
    assert!(text_of(&c, "#you").await.starts_with("您可以签署放行"));
    assert!(
        text_of(&c, "form[action$='/release'] p.meaning")
            .await
            .contains("我批准此批次放行")
    );
    shot(&c, "zh-release-may-sign").await;
    fill(
        &c,
        "form[action$='/release'] input[name=password]",
        USER_PASSWORD,
    )
    .await;
    submit(&c, "form[action$='/release']").await;
    wait_for(&c, "#status-said").await;
    assert_eq!(lab.status(&batch), "released");
    let said = text_of(&c, "#status-said").await;
    assert!(
        said.contains("已放行") && said.contains("我批准此批次放行"),
        "{said}"
    );
    // Dates in the Chinese order.
    assert!(
        c.source().await.unwrap().contains("年"),
        "a date in Chinese order"
    );
    shot(&c, "zh-batch-released").await;
    let record = lab.batch_record(&batch).await;
    assert_eq!(record["signatures"][0]["statement_locale"], "zh-CN");
    sign_out(&c).await;
    c.close().await.unwrap();
}

/// The value of a form field as the page holds it now.
async fn value_of(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

/// A technician types a result, leaves, and sends it after the session
/// ended: nothing is saved, the sign-in page says why, and after signing in
/// the form is back with what was typed, to send again. Another person
/// signing in at that browser gets an empty form.
#[actix_web::test]
async fn a_result_sent_after_the_session_ended_is_back_in_its_form_after_signing_in() {
    let lab = Lab::msc().await;
    let app = &lab.app;
    let base = app.address.clone();
    let (tech_id, tech) = app.user_with(&["technician"]).await;
    lab.qualify_all(&tech_id).await;
    let (other_id, other) = app.user_with(&["technician"]).await;
    lab.qualify_all(&other_id).await;
    let batch = lab.batch("UCMSC-SESSION-ENDED").await;
    let results = lab.count("results");
    let d = chromedriver();
    let c = browser(&d, 1024, 900).await;
    let form = format!("{base}/batches/{batch}/results/new?test=STER");

    sign_in(&c, &base, &tech).await;
    c.goto(&form).await.unwrap();
    wait_for(&c, "select[name=test_code]").await;
    enter_value(&c, "STER", "no growth").await;
    fill(&c, "textarea[name=comment]", "read on day 14 by the bench").await;
    let idle_out = || {
        use diesel::RunQueryDsl;
        diesel::sql_query("UPDATE sessions SET last_seen_at = now() - interval '2 days'")
            .execute(&mut app.conn())
            .unwrap();
    };
    idle_out();
    submit(&c, "form[action$='/results']").await;
    wait_for_url(&c, "/login").await;
    assert!(
        text_of(&c, "#session-ended")
            .await
            .contains("nothing was saved"),
        "the sign-in page says why"
    );
    assert_eq!(lab.count("results"), results, "nothing was saved");
    shot(&c, "session-ended-sign-in").await;

    // Signing in again: back at the form, filled.
    fill(&c, "input[name=username]", &tech).await;
    fill(&c, "input[name=password]", USER_PASSWORD).await;
    submit(&c, "form[action='/login']").await;
    wait_for_url(&c, "/results/new").await;
    wait_for(&c, "#form-restored").await;
    assert_eq!(value_of(&c, "select[name=test_code]").await, "STER");
    assert!(
        c.find(Locator::Css(
            "fieldset.value-options[data-test='STER'] input[value='no growth']:checked"
        ))
        .await
        .is_ok(),
        "the chosen option is chosen again"
    );
    assert_eq!(
        value_of(&c, "textarea[name=comment]").await,
        "read on day 14 by the bench"
    );
    shot(&c, "session-ended-form-back").await;
    submit(&c, "form[action$='/results']").await;
    wait_for(&c, "#recorded").await;
    assert_eq!(lab.count("results"), results + 1, "saved once, now");

    // Another person at the same browser tab never gets someone else's typing.
    c.goto(&form).await.unwrap();
    wait_for(&c, "select[name=test_code]").await;
    enter_value(&c, "STER", "growth").await;
    fill(
        &c,
        "textarea[name=comment]",
        "typed by the first technician",
    )
    .await;
    idle_out();
    submit(&c, "form[action$='/results']").await;
    wait_for_url(&c, "/login").await;
    fill(&c, "input[name=username]", &other).await;
    fill(&c, "input[name=password]", USER_PASSWORD).await;
    submit(&c, "form[action='/login']").await;
    wait_for_url(&c, "/results/new").await;
    wait_for(&c, "select[name=test_code]").await;
    assert!(c.find(Locator::Css("#form-restored")).await.is_err());
    assert_eq!(value_of(&c, "textarea[name=comment]").await, "");
    c.close().await.unwrap();
}
