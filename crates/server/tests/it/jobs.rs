//! Bulk work runs as a job: a CSV import is answered at once with `202` and
//! a job, which its administrator follows by `job.updated` frames or at
//! `GET /api/v1/admin/jobs/{id}`; the outcome is all or nothing, only the
//! organization's administrators can see the job, it runs one import at a
//! time, and a restart still reports how it ended.

use crate::common::{Answer, Client, PASSWORD, Server, UNKNOWN_JOB, Ws, answer, assert_error};
use serde_json::Value;
use std::collections::BTreeSet;

pub(crate) async fn import(client: &Client, csv: &str) -> Answer {
    let res = client
        .http
        .post(format!("{}/api/v1/admin/extensions/import", client.base))
        .bearer_auth(&client.token)
        .header("content-type", "text/csv")
        .body(csv.to_owned())
        .send()
        .await
        .expect("import request");
    answer(res).await
}

/// Checks the `202` answer of an import and returns its job.
pub(crate) fn accepted(a: &Answer, rows: u64) -> Value {
    assert_eq!(a.status, 202, "the import is accepted at once: {}", a.body);
    let job = a.body["job"].clone();
    assert_eq!(job["kind"], "extension_import");
    assert_eq!(job["state"], "running");
    assert_eq!(job["total"], rows);
    assert_eq!(job["done"], 0);
    assert_eq!(job["created"], 0);
    assert_eq!(job["refused"], serde_json::json!([]));
    assert!(job["error"].is_null());
    let id = job["id"].as_str().expect("a job id");
    let location = a
        .headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a Location header");
    assert_eq!(location, format!("/api/v1/admin/jobs/{id}"));
    job
}

/// A file of `rows` new extensions numbered from 1000, enough work for a
/// job to be still running a moment after it was answered.
pub(crate) fn large_file(rows: usize) -> String {
    let rows: Vec<String> = (1000..1000 + rows)
        .map(|n| format!("{n},Person {n},password-{n}"))
        .collect();
    format!("number,name,password\n{}\n", rows.join("\n"))
}

/// Checks that an import was refused because job `running` runs.
pub(crate) fn refused_for_running(a: &Answer, running: &str) {
    assert_error(a, 409, "job_running", "a second import while one runs");
    assert!(
        a.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(running)),
        "the refusal names the running job: {}",
        a.body
    );
}

/// Reads `job.updated` frames of job `id` until it finishes; returns every
/// frame's job, the finished one last.
pub(crate) async fn follow(ws: &mut Ws, id: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let frame = ws.next_of("job.updated").await;
        let job = frame["data"]["job"].clone();
        if job["id"] != id {
            continue;
        }
        let running = job["state"] == "running";
        seen.push(job);
        if !running {
            return seen;
        }
    }
}

fn numbers(extensions: &Value) -> BTreeSet<String> {
    extensions["extensions"]
        .as_array()
        .expect("extensions")
        .iter()
        .map(|e| e["number"].as_str().expect("number").to_owned())
        .collect()
}

#[tokio::test]
async fn an_import_answers_202_at_once_and_its_job_reports_progress_until_it_succeeds() {
    let server = Server::start();
    let alice = server.sign_in("101").await;
    let mut ws = alice.ws(None).await;

    let a = import(
        &alice,
        "number,name,password,role\n\
         110,Ida Ince,ida-password-1,member\n\
         111,Jon Judd,jon-password-1,admin\n\
         112,Kim Kerr,kim-password-1,member\n\
         113,Lou Lamb,lou-password-1,member\n",
    )
    .await;
    let job = accepted(&a, 4);
    let id = job["id"].as_str().expect("id");

    let updates = follow(&mut ws, id).await;
    let done: Vec<u64> = updates
        .iter()
        .map(|j| j["done"].as_u64().expect("done"))
        .collect();
    assert!(
        done.windows(2).all(|w| w[0] <= w[1]),
        "progress only moves forward: {done:?}"
    );
    assert!(
        updates.len() > 1 && updates[0]["state"] == "running",
        "progress is told while the passwords are hashed: {updates:?}"
    );
    let last = updates.last().expect("the finished job");
    assert_eq!(last["state"], "succeeded", "{last}");
    assert_eq!(
        (last["total"].as_u64(), last["done"].as_u64()),
        (Some(4), Some(4))
    );
    assert_eq!(last["created"], 4);
    assert_eq!(last["refused"], serde_json::json!([]));
    assert!(last["error"].is_null());

    let polled = alice.get(&format!("/api/v1/admin/jobs/{id}")).await;
    assert_eq!(polled.status, 200, "{}", polled.body);
    assert_eq!(&polled.body["job"], last);

    let after = numbers(&alice.get("/api/v1/admin/extensions").await.body);
    assert!(
        ["110", "111", "112", "113"]
            .iter()
            .all(|n| after.contains(*n))
    );
    let jon = server.sign_in_answer("demo", "111", "jon-password-1").await;
    assert_eq!(jon.status, 200, "an imported extension signs in");
    assert_eq!(jon.body["extension"]["role"], "admin");
}

#[tokio::test]
async fn an_import_with_taken_numbers_creates_nothing_and_names_every_refused_row() {
    let server = Server::start();
    let alice = server.sign_in("101").await;
    let before = alice.get("/api/v1/admin/extensions").await.body;
    let mut ws = alice.ws(None).await;

    let a = import(
        &alice,
        "number,name,password\n\
         120,New One,new-password-1\n\
         102,Bob Again,new-password-2\n\
         121,New Two,new-password-3\n\
         105,Erin Again,new-password-4\n",
    )
    .await;
    let job = accepted(&a, 4);
    let id = job["id"].as_str().expect("id");

    let last = follow(&mut ws, id).await.pop().expect("the finished job");
    assert_eq!(last["state"], "failed", "{last}");
    assert_eq!(last["created"], 0);
    let refused = last["refused"].as_array().expect("refused rows");
    let rows: Vec<(u64, &str)> = refused
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().expect("line"),
                r["number"].as_str().expect("number"),
            )
        })
        .collect();
    assert_eq!(rows, [(3, "102"), (5, "105")]);
    assert!(
        refused.iter().all(|r| r["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("already exists"))),
        "{refused:?}"
    );
    assert!(
        last["error"]
            .as_str()
            .is_some_and(|e| e.contains("nothing was created")),
        "{last}"
    );

    let polled = alice.get(&format!("/api/v1/admin/jobs/{id}")).await;
    assert_eq!(&polled.body["job"], &last);
    assert_eq!(
        alice.get("/api/v1/admin/extensions").await.body,
        before,
        "no extension was created"
    );
    assert_eq!(
        server.sign_in_answer("demo", "102", PASSWORD).await.status,
        200,
        "the existing extension is untouched"
    );
}

#[tokio::test]
async fn a_second_import_while_one_runs_is_refused_naming_the_running_job() {
    let server = Server::start();
    let alice = server.sign_in("101").await;
    let mut ws = alice.ws(None).await;
    let first = accepted(&import(&alice, &large_file(200)).await, 200);
    let id = first["id"].as_str().expect("id");

    let second = import(
        &alice,
        "number,name,password\n150,Late Comer,late-password-1\n",
    )
    .await;
    refused_for_running(&second, id);
    let last = follow(&mut ws, id).await.pop().expect("the finished job");
    assert_eq!(last["state"], "succeeded", "{last}");
    let again = import(
        &alice,
        "number,name,password\n150,Late Comer,late-password-1\n",
    )
    .await;
    accepted(&again, 1);
}

#[tokio::test]
async fn an_invalid_file_is_still_refused_up_front_naming_its_line() {
    let server = Server::start();
    let alice = server.sign_in("101").await;
    let a = import(
        &alice,
        "number,name,password\n130,Good Row,good-password-1\n13x,Bad Number,good-password-2\n",
    )
    .await;
    assert_error(&a, 422, "validation_failed", "a bad number");
    assert!(
        a.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("line 3")),
        "{}",
        a.body
    );
}

#[tokio::test]
async fn only_the_organizations_administrators_see_a_job_and_only_its_owner_hears_of_it() {
    let server = Server::start();
    server.admin(&["create-org", "--slug", "other", "--name", "Other"]);
    server.admin(&[
        "create-extension",
        "--org",
        "other",
        "--number",
        "101",
        "--name",
        "Xavier Other",
        "--password",
        PASSWORD,
        "--admin",
    ]);
    let alice = server.sign_in("101").await;
    let bob = server.sign_in("102").await;
    let xavier = server.sign_in_to("other", "101", PASSWORD).await;
    let mut alice_ws = alice.ws(None).await;
    let mut bob_ws = bob.ws(None).await;
    let mut xavier_ws = xavier.ws(None).await;

    let a = import(
        &alice,
        "number,name,password\n140,Max Mott,max-password-1\n",
    )
    .await;
    let id = accepted(&a, 1)["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/admin/jobs/{id}");
    follow(&mut alice_ws, &id).await;

    assert_error(&bob.get(&path).await, 403, "forbidden", "a member");
    assert_error(
        &xavier.get(&path).await,
        404,
        "not_found",
        "another organization's administrator",
    );
    assert_error(
        &alice
            .get(&format!("/api/v1/admin/jobs/{UNKNOWN_JOB}"))
            .await,
        404,
        "not_found",
        "an unknown job",
    );
    assert_eq!(alice.get(&path).await.status, 200);

    // The job's frames were queued to alice's colleagues' sockets, if at
    // all, before they reached hers: whatever comes before the answer to a
    // ping has everything that was sent to them.
    for (ws, who) in [(&mut bob_ws, "bob"), (&mut xavier_ws, "xavier")] {
        ws.send(serde_json::json!({"type": "ping"})).await;
        loop {
            let frame = ws.next_frame().await.expect("open");
            assert_ne!(frame["type"], "job.updated", "{who} hears of alice's job");
            if frame["type"] == "pong" {
                break;
            }
        }
    }
}

#[tokio::test]
async fn an_import_cut_short_by_shutdown_leaves_all_or_nothing_and_the_server_stops() {
    let mut server = Server::start();
    let alice = server.sign_in("101").await;
    let mut ws = alice.ws(None).await;
    let rows = 200;
    let id = accepted(&import(&alice, &large_file(rows)).await, 200)["id"]
        .as_str()
        .expect("id")
        .to_owned();

    // Once the passwords are being hashed, stop the server.
    loop {
        let frame = ws.next_of("job.updated").await;
        if frame["data"]["job"]["id"] == id.as_str() && frame["data"]["job"]["done"] != 0 {
            break;
        }
    }
    server.sigterm();
    let status = server.wait();
    assert!(status.success(), "exit status {status:?}");

    let restarted = Server::start_on(&server.data_dir, "127.0.0.1:0");
    let alice = restarted.sign_in("101").await;
    let imported = numbers(&alice.get("/api/v1/admin/extensions").await.body)
        .into_iter()
        .filter(|n| n.len() == 4)
        .count();
    assert!(
        imported == 0 || imported == rows,
        "all or nothing, not {imported} of {rows}"
    );
    // The restarted server still knows the job, and how it ended.
    let polled = alice.get(&format!("/api/v1/admin/jobs/{id}")).await;
    assert_eq!(polled.status, 200, "{}", polled.body);
    let job = &polled.body["job"];
    if imported == 0 {
        assert_eq!(job["state"], "failed", "{job}");
        assert!(
            job["error"]
                .as_str()
                .is_some_and(|e| e.contains("nothing was created")),
            "{job}"
        );
    } else {
        assert_eq!(job["state"], "succeeded", "{job}");
        assert_eq!(job["created"], rows);
    }
}
