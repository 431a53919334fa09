//! Backup and restore (EU GMP Annex 11 §7.2): a backup taken while results
//! are being recorded restores into a fresh data directory whose every chain
//! verifies and whose heads, root and counts are the manifest's; a restore
//! never goes over records, and an altered backup is refused untouched.

use crate::lab::Lab;
use serde_json::json;
use std::process::{Command, Output};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

fn cellqc(args: &[&str], env: &[(&str, &str)], without_database_url: bool) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cellqc"));
    cmd.args(args);
    if without_database_url {
        cmd.env_remove("DATABASE_URL");
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[actix_web::test]
async fn a_backup_taken_under_write_load_restores_into_a_fresh_data_directory_and_verifies() {
    let lab = Rc::new(Lab::msc().await);
    let writing = Arc::new(AtomicBool::new(true));
    let written = Arc::new(AtomicUsize::new(0));
    let load = {
        let (lab, writing, written) = (lab.clone(), writing.clone(), written.clone());
        actix_web::rt::spawn(async move {
            let mut i = 0;
            while writing.load(Ordering::Relaxed) {
                i += 1;
                let batch = lab.batch(&format!("LOAD-{i}")).await;
                lab.recorded(&batch, "VIAB", json!("90.5")).await;
                written.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    while written.load(Ordering::Relaxed) < 3 {
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let work = tempfile::Builder::new()
        .prefix("cellqc-backup")
        .tempdir_in("/tmp")
        .unwrap();
    let file = work.path().join("site.cellqc-backup");
    let key_file = lab.app.data_dir.path().join("anchor.key");
    let (db_url, data_dir) = (
        lab.app.db_url.clone(),
        lab.app.data_dir.path().to_str().unwrap().to_owned(),
    );
    let file_arg = file.to_str().unwrap().to_owned();
    let taken = actix_web::rt::task::spawn_blocking(move || {
        cellqc(
            &["backup", "--to", &file_arg],
            &[("DATABASE_URL", &db_url), ("CELLQC_DATA_DIR", &data_dir)],
            false,
        )
    })
    .await
    .unwrap();
    assert!(taken.status.success(), "{}", text(&taken));
    let at_backup = written.load(Ordering::Relaxed);
    while written.load(Ordering::Relaxed) < at_backup + 2 {
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    writing.store(false, Ordering::Relaxed);
    load.await.unwrap();
    let final_batches = lab.count("batches");

    // The file: the archive and the manifest, readable by the owner only.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let mut tar = tar::Archive::new(std::fs::File::open(&file).unwrap());
    let mut manifest = serde_json::Value::Null;
    for e in tar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some("manifest.json") {
            manifest = serde_json::from_reader(&mut e).unwrap();
        }
    }
    let in_backup = manifest["counts"]["batches"].as_i64().unwrap();
    assert!(in_backup >= 3, "{manifest}");
    assert!(
        in_backup < final_batches,
        "the writes went on after the snapshot: {in_backup} < {final_batches}"
    );

    // Restored into a fresh data directory (the embedded cluster), checked
    // with the site's key.
    let fresh = work.path().join("restored");
    let fresh_arg = fresh.to_str().unwrap().to_owned();
    let key_arg = key_file.to_str().unwrap().to_owned();
    let env = [
        ("CELLQC_DATA_DIR", fresh_arg.as_str()),
        ("CELLQC_ANCHOR_KEY_FILE", key_arg.as_str()),
    ];
    let restored = cellqc(&["restore", "--from", file.to_str().unwrap()], &env, true);
    let out = text(&restored);
    assert!(restored.status.success(), "{out}");
    assert!(out.contains("OK: every chain verifies, every record is as its entries cover it and every signature matches"), "{out}");
    assert!(out.contains(manifest["root"].as_str().unwrap()), "{out}");
    // The restore drill is the same verification: rows and signatures too.
    let checked = out
        .split(" record(s) and ")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse::<i64>().ok())
        .unwrap_or(0);
    assert!(checked > 0, "{out}");
    let verified = cellqc(&["audit", "verify"], &env, true);
    assert!(verified.status.success(), "{}", text(&verified));
    assert!(text(&verified).contains("OK: every chain verifies"));

    // Never over records.
    let again = cellqc(&["restore", "--from", file.to_str().unwrap()], &env, true);
    assert!(!again.status.success());
    assert!(text(&again).contains("not empty"), "{}", text(&again));

    // An altered backup is refused before anything is restored.
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    let altered = work.path().join("altered.cellqc-backup");
    std::fs::write(&altered, bytes).unwrap();
    let other = work.path().join("other");
    let other_arg = other.to_str().unwrap().to_owned();
    let refused = cellqc(
        &["restore", "--from", altered.to_str().unwrap()],
        &[
            ("CELLQC_DATA_DIR", other_arg.as_str()),
            ("CELLQC_ANCHOR_KEY_FILE", key_arg.as_str()),
        ],
        true,
    );
    assert!(!refused.status.success());
    assert!(text(&refused).contains("altered"), "{}", text(&refused));
    let empty = cellqc(
        &["audit", "verify"],
        &[
            ("CELLQC_DATA_DIR", other_arg.as_str()),
            ("CELLQC_ANCHOR_KEY_FILE", key_arg.as_str()),
        ],
        true,
    );
    assert!(
        !text(&empty).contains("OK"),
        "nothing was restored: {}",
        text(&empty)
    );
    // A different site's key does not accept it either.
    let foreign = cellqc(
        &[
            "restore",
            "--from",
            file.to_str().unwrap(),
            "--public-key",
            &"ab".repeat(32),
        ],
        &[("CELLQC_DATA_DIR", other_arg.as_str())],
        true,
    );
    assert!(!foreign.status.success());
}
