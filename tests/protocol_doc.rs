//! `docs/protocol.md` is checked against the code: every JSON example parses into the protocol
//! types and serializes back to the same JSON, so a renamed or missing field fails here.

use serde_json::Value;
use ticker::protocol::{Request, ServerMessage};

fn doc() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/protocol.md"))
        .expect("docs/protocol.md exists")
}

/// The contents of every ```json block.
fn json_examples(doc: &str) -> Vec<Value> {
    let mut examples = Vec::new();
    let mut block: Option<String> = None;
    for line in doc.lines() {
        match (&mut block, line.trim()) {
            (None, "```json") => block = Some(String::new()),
            (Some(text), "```") => {
                let value = serde_json::from_str(text)
                    .unwrap_or_else(|e| panic!("invalid JSON example {text}: {e}"));
                examples.push(value);
                block = None;
            }
            (Some(text), _) => text.push_str(line),
            (None, _) => {}
        }
    }
    examples
}

/// Every example round-trips through `ServerMessage` or `ClientMessage` (or the HTTP error body).
#[test]
fn every_example_matches_the_types() {
    let examples = json_examples(&doc());
    let (mut server, mut client, mut http) = (0, 0, 0);
    for example in &examples {
        let back = if example.get("type").is_some() {
            server += 1;
            let message: ServerMessage = serde_json::from_value(example.clone())
                .unwrap_or_else(|e| panic!("{example} is no server message: {e}"));
            serde_json::to_value(message).unwrap()
        } else if example.get("op").is_some() {
            client += 1;
            let request = Request::parse(&example.to_string())
                .unwrap_or_else(|e| panic!("{example} is no client request: {}", e.reason));
            let mut back = serde_json::to_value(request.message).unwrap();
            if let Some(id) = request.id {
                back["id"] = id;
            }
            back
        } else {
            http += 1;
            assert!(example["error"].is_string() && example["message"].is_string());
            example.clone()
        };
        assert_eq!(&back, example, "the example and the type disagree");
    }
    assert!(
        server >= 8 && client >= 3 && http >= 1,
        "{server} {client} {http}"
    );
}

/// Every server message type and error code appears in the document.
#[test]
fn every_type_and_code_is_documented() {
    let doc = doc();
    for name in [
        "\"type\":\"welcome\"",
        "\"type\":\"subscribed\"",
        "\"type\":\"snapshot\"",
        "\"type\":\"quotes\"",
        "\"type\":\"pong\"",
        "\"type\":\"history\"",
        "\"op\":\"history\"",
        "\"recovered\"",
        "\"since\"",
        "\"type\":\"status\"",
        "\"type\":\"error\"",
        "\"type\":\"authenticated\"",
        "\"op\":\"auth\"",
        "`forbidden_symbol`",
        "`forbidden`",
        "`bad_request`",
        "`unknown_symbol`",
        "`too_many_subscriptions`",
        "`too_many_symbols`",
        "`rate_limited`",
        "`too_many_connections`",
        "`too_many_connections_from_ip`",
        "`forbidden_origin`",
        "`unauthorized`",
        "`method_not_allowed`",
        "| 1001 |",
        "| 1003 |",
        "| 1007 |",
        "| 1008 |",
        "| 1009 |",
        "| 4408 |",
        "| 4001 |",
        "| 4002 |",
        "| 4003 |",
        "| 4004 |",
    ] {
        assert!(
            doc.contains(name),
            "docs/protocol.md does not mention {name}"
        );
    }
}

/// Every close code the server sends has its row in the document, and the row's advice (no,
/// with backoff, now) is what `protocol::close::advice` says, which the dashboard follows.
#[test]
fn close_code_rows_give_the_advice_of_the_code() {
    use ticker::protocol::close::{Reconnect, SENT_BY_SERVER, advice};
    let doc = doc();
    for code in SENT_BY_SERVER {
        let row = doc
            .lines()
            .find(|line| line.starts_with(&format!("| {code} |")))
            .unwrap_or_else(|| panic!("docs/protocol.md has no row for close code {code}"));
        let said = row.trim_end_matches('|').rsplit('|').next().unwrap().trim();
        let documented = if said.starts_with("no") {
            Reconnect::No
        } else if said.starts_with("with backoff") {
            Reconnect::Backoff
        } else if said.starts_with("now") {
            Reconnect::Now
        } else {
            panic!("close code {code}: no advice in {row:?}")
        };
        assert_eq!(documented, advice(*code), "close code {code}");
    }
}
