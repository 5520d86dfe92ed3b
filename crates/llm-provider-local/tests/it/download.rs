//! Downloading the real model file from a loopback server: nothing partial is ever left at the
//! destination.

use std::path::Path;
use std::sync::Mutex;

use llm_core::{ErrorKind, Progress};
use llm_provider_local::download::{ModelDownload, fetch};

use crate::support::{Behaviour, FileServer, model_bytes, model_file, serve};

fn job(server: &FileServer, dir: &Path) -> ModelDownload {
    ModelDownload {
        url: server.url.clone(),
        dest: dir.join("m.gguf"),
        sha256: None,
        space_limit: None,
    }
}

/// Runs the download, collecting its progress events.
async fn run(job: &ModelDownload) -> (Result<(), llm_core::Error>, Vec<Progress>) {
    let events = Mutex::new(Vec::new());
    let sink = |p: Progress| events.lock().expect("lock").push(p);
    let result = fetch(job, &sink).await;
    (result, events.into_inner().expect("lock"))
}

#[tokio::test]
async fn a_complete_download_is_verified_against_the_linked_etag_and_renamed_into_place() {
    let Some(path) = model_file() else { return };
    let (bytes, hash) = model_bytes(&path);
    let behaviour = Behaviour {
        linked_etag: Some(hash.clone()),
        ..Behaviour::default()
    };
    let server = serve(bytes.clone(), behaviour).await;
    let dir = tempfile::tempdir().expect("dir");
    let job = job(&server, dir.path());
    let (result, events) = run(&job).await;
    result.expect("downloaded");
    assert_eq!(
        std::fs::metadata(&job.dest).expect("file").len(),
        bytes.len() as u64
    );
    assert!(!job.partial_path().exists());
    let last = events.last().expect("progress");
    assert_eq!(last.status, "success");
    assert_eq!(last.completed, Some(bytes.len() as u64));
    assert_eq!(last.total, Some(bytes.len() as u64));
    assert!(events.iter().all(|p| p.provider == "local"));
    assert!(events.iter().any(|p| p.status == "downloading m.gguf"));
    assert_eq!(
        server.requests.lock().expect("lock").len(),
        2,
        "redirect followed"
    );
}

#[tokio::test]
async fn an_interrupted_download_resumes_with_a_range_request() {
    let Some(path) = model_file() else { return };
    let (bytes, hash) = model_bytes(&path);
    let cut = 10 << 20;
    let behaviour = Behaviour {
        cut_first_after: Some(cut),
        etag: Some(hash.clone()),
        ..Behaviour::default()
    };
    let server = serve(bytes.clone(), behaviour).await;
    let dir = tempfile::tempdir().expect("dir");
    let job = job(&server, dir.path());
    let (result, _) = run(&job).await;
    let error = result.expect_err("cut");
    assert_eq!(error.kind(), ErrorKind::Network);
    assert!(
        error.message().contains("LOCAL_MODEL_PATH"),
        "{}",
        error.message()
    );
    assert!(!job.dest.exists(), "nothing at the destination");
    assert_eq!(
        std::fs::metadata(job.partial_path()).expect("part").len(),
        cut as u64
    );

    let (result, _) = run(&job).await;
    result.expect("resumed");
    assert_eq!(
        std::fs::read(&job.dest).expect("file").as_slice(),
        bytes.as_slice()
    );
    assert!(!job.partial_path().exists());
    let requests = server.requests.lock().expect("lock");
    assert!(
        requests[1]
            .to_ascii_lowercase()
            .contains(&format!("range: bytes={cut}-")),
        "{}",
        requests[1]
    );
}

#[tokio::test]
async fn a_wrong_hash_deletes_the_download() {
    let Some(path) = model_file() else { return };
    let (bytes, _) = model_bytes(&path);
    let server = serve(bytes.clone(), Behaviour::default()).await;
    let dir = tempfile::tempdir().expect("dir");
    let job = ModelDownload {
        sha256: Some("0".repeat(64)),
        ..job(&server, dir.path())
    };
    let (result, _) = run(&job).await;
    let error = result.expect_err("mismatch");
    assert_eq!(error.kind(), ErrorKind::MalformedAnswer);
    assert!(error.message().contains("sha256"), "{}", error.message());
    assert!(!job.dest.exists());
    assert!(!job.partial_path().exists());
}

#[tokio::test]
async fn a_server_error_leaves_nothing() {
    let Some(path) = model_file() else { return };
    let (bytes, _) = model_bytes(&path);
    let behaviour = Behaviour {
        status: Some(503),
        ..Behaviour::default()
    };
    let server = serve(bytes.clone(), behaviour).await;
    let dir = tempfile::tempdir().expect("dir");
    let job = job(&server, dir.path());
    let (result, _) = run(&job).await;
    let error = result.expect_err("503");
    assert_eq!(error.kind(), ErrorKind::ServerError);
    assert_eq!(error.status(), Some(503));
    assert!(
        error.message().contains("m.gguf"),
        "names the file: {}",
        error.message()
    );
    assert!(!job.dest.exists());
    assert!(!job.partial_path().exists());
}

#[tokio::test]
async fn too_little_disk_space_is_refused_before_writing() {
    let Some(path) = model_file() else { return };
    let (bytes, _) = model_bytes(&path);
    let server = serve(bytes.clone(), Behaviour::default()).await;
    let dir = tempfile::tempdir().expect("dir");
    let job = ModelDownload {
        space_limit: Some(bytes.len() as u64 / 2),
        ..job(&server, dir.path())
    };
    let (result, _) = run(&job).await;
    let error = result.expect_err("no space");
    assert_eq!(error.kind(), ErrorKind::Config);
    assert!(
        error.message().contains("disk space"),
        "{}",
        error.message()
    );
    assert!(!job.dest.exists());
    assert!(!job.partial_path().exists());
}
