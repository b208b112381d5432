//! The outside world: an authoritative DNS server for `demo.test`, written with hickory-proto,
//! answering over UDP and TCP, and TCP services that greet whoever connects.
//!
//! Everything here reads untrusted bytes: a message that does not parse gets no answer, or
//! FORMERR, and nothing panics.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};

use crate::transport::{accept_loop, read_frame, write_frame};

/// The zone the server is authoritative for.
pub(crate) const ZONE: &str = "demo.test.";

/// The zone's A records: (name, TTL in seconds, address).
pub(crate) const RECORDS: &[(&str, u32, Ipv4Addr)] =
    &[("app.demo.test.", 3, Ipv4Addr::new(198, 51, 100, 10))];

/// How often a server thread looks at its stop flag.
const POLL: Duration = Duration::from_millis(50);

/// The questions the server was asked, in order (`name type`), so that the demo can tell
/// whether a query reached it.
pub(crate) type Questions = Arc<Mutex<Vec<String>>>;

/// The server's answer to `query`; `None` when the message is not a query (servers drop
/// those).
pub(crate) fn answer(query: &[u8], questions: &Questions) -> Option<Vec<u8>> {
    let msg = Message::from_vec(query).ok()?;
    if msg.metadata.message_type != MessageType::Query {
        return None;
    }
    let mut response = Message::response(msg.metadata.id, msg.metadata.op_code);
    response.metadata.authoritative = true;
    response.metadata.recursion_desired = msg.metadata.recursion_desired;
    let question = match (msg.metadata.op_code, msg.queries.as_slice()) {
        (OpCode::Query, [question]) => question.clone(),
        (OpCode::Query, _) => {
            response.metadata.response_code = ResponseCode::FormErr;
            return response.to_vec().ok();
        }
        _ => {
            response.metadata.response_code = ResponseCode::NotImp;
            return response.to_vec().ok();
        }
    };
    let mut name = question.name.to_ascii().to_ascii_lowercase();
    if !name.ends_with('.') {
        name.push('.');
    }
    questions
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(format!("{name} {}", question.query_type));
    let in_zone = name == ZONE || name.ends_with(&format!(".{ZONE}"));
    let records: Vec<&(&str, u32, Ipv4Addr)> = RECORDS
        .iter()
        .filter(|(owner, ..)| *owner == name)
        .collect();
    response.metadata.response_code = if !in_zone {
        // Not ours, and this server does not recurse.
        ResponseCode::Refused
    } else if records.is_empty() && name != ZONE {
        ResponseCode::NXDomain
    } else {
        ResponseCode::NoError
    };
    if question.query_type == RecordType::A {
        for (_, ttl, addr) in records {
            // The owner keeps the question's case, as the server read it.
            response.add_answer(Record::from_rdata(
                question.name.clone(),
                *ttl,
                RData::A(A(*addr)),
            ));
        }
    }
    response.add_query(question);
    response.to_vec().ok()
}

/// Serves DNS over UDP on `socket` until `stop`.
pub(crate) fn serve_dns_udp(socket: &UdpSocket, questions: &Questions, stop: &AtomicBool) {
    if socket.set_read_timeout(Some(POLL)).is_err() {
        return;
    }
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        if let Ok((n, from)) = socket.recv_from(&mut buf)
            && let Some(response) = answer(&buf[..n], questions)
        {
            let _ = socket.send_to(&response, from);
        }
    }
}

/// Serves DNS over TCP on `listener` until `stop`.
pub(crate) fn serve_dns_tcp(listener: &TcpListener, questions: &Questions, stop: &AtomicBool) {
    let _ = accept_loop(listener, stop, |mut stream, _| {
        while let Ok(Some(query)) = read_frame(&mut stream) {
            let Some(response) = answer(&query, questions) else {
                break;
            };
            if write_frame(&mut stream, &response).is_err() {
                break;
            }
        }
    });
}

/// Serves a TCP service on `listener` until `stop`: each connection gets one line naming the
/// service and the end of the server's side, then the server waits for the client to close.
pub(crate) fn serve_greeting(listener: &TcpListener, stop: &AtomicBool) {
    let me = listener
        .local_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string());
    let _ = accept_loop(listener, stop, |mut stream, _| {
        if stream
            .write_all(format!("hello from {me}\n").as_bytes())
            .is_ok()
            && stream.shutdown(Shutdown::Write).is_ok()
        {
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;

    fn ask(name: &str) -> Message {
        let mut query = Message::query();
        query.metadata.id = 42;
        query.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        let questions = Questions::default();
        Message::from_vec(&answer(&query.to_vec().unwrap(), &questions).unwrap()).unwrap()
    }

    #[test]
    fn the_server_answers_its_zone_and_refuses_the_rest() {
        let app = ask("App.Demo.Test.");
        assert_eq!(app.metadata.id, 42);
        assert!(app.metadata.authoritative);
        assert_eq!(app.metadata.response_code, ResponseCode::NoError);
        assert_eq!(app.answers.len(), 1);
        assert_eq!(app.answers[0].ttl, 3);
        assert_eq!(app.answers[0].name.to_ascii(), "App.Demo.Test.");
        assert_eq!(
            ask("nope.demo.test.").metadata.response_code,
            ResponseCode::NXDomain
        );
        assert_eq!(
            ask("evil.example.org.").metadata.response_code,
            ResponseCode::Refused
        );
    }

    #[test]
    fn garbage_gets_no_answer() {
        let questions = Questions::default();
        for bytes in [&b""[..], &[0u8; 5][..], &[0xff; 40][..]] {
            let _ = answer(bytes, &questions);
        }
    }
}
