//! What a proxy saw of a flow: [`Layer7`], with one record of [`Dns`], [`Http`] or
//! [`Kafka`].

use std::net::IpAddr;

use crate::enums::L7FlowType;
use crate::wire::message;

message! {
    /// A flow's L7 record (`flow.Layer7`, the field `l7`), set on flows of type `L7`. The record is
    /// a proto `oneof`: at most one of `dns`, `http` and `kafka` is set.
    pub struct Layer7 {
        /// Request, response or sample.
        #[serde(rename = "type")]
        pub l7_type: L7FlowType,
        /// The response's latency in nanoseconds (a 64-bit integer: a string in JSON).
        pub latency_ns: Option<u64>,
        /// A DNS request or response.
        pub dns: Option<Dns>,
        /// An HTTP request or response.
        pub http: Option<Http>,
        /// A Kafka request or response (deprecated by Hubble).
        pub kafka: Option<Kafka>,
    }

    /// A DNS message as the proxy saw it (`flow.DNS`).
    pub struct Dns {
        /// The name asked, with its trailing dot (`github.com.`).
        pub query: String,
        /// The addresses in the answer.
        pub ips: Option<Vec<String>>,
        /// The answer's TTL in seconds.
        pub ttl: Option<u32>,
        /// The CNAMEs in the answer.
        pub cnames: Option<Vec<String>>,
        /// Where the message was observed (`proxy`).
        pub observation_source: String,
        /// The response code (0 `NOERROR`, 3 `NXDOMAIN`, ...).
        pub rcode: Option<u32>,
        /// The question's types (`A`, `AAAA`, ...).
        pub qtypes: Option<Vec<String>>,
        /// The types of the answer's records.
        pub rrtypes: Option<Vec<String>>,
    }
}

impl Dns {
    /// The record of a DNS answer to `query` as the proxy's access log gives it: its addresses,
    /// TTL (`u32::MAX`, an answer without records, is written as 0), CNAME targets, response
    /// code and question type.
    pub fn response(
        query: &str,
        ips: &[IpAddr],
        ttl: u32,
        cnames: &[String],
        rcode: u16,
        qtype: String,
    ) -> Self {
        Self {
            query: query.to_owned(),
            ips: Some(ips.iter().map(IpAddr::to_string).collect()),
            ttl: Some(if ttl == u32::MAX { 0 } else { ttl }),
            cnames: Some(cnames.to_vec()),
            rcode: Some(u32::from(rcode)),
            qtypes: Some(vec![qtype]),
            ..Self::default()
        }
    }

    /// The mnemonic of the response code (`NOERROR`, `NXDOMAIN`, ...), or `RCODE<n>` for one
    /// without a name; an unset code is `NOERROR` (jsonpb omits 0).
    pub fn rcode_name(&self) -> String {
        let rcode = self.rcode.unwrap_or(0);
        u16::try_from(rcode).map_or_else(|_| format!("RCODE{rcode}"), fqdnpath_names::rcode_name)
    }
}

message! {
    /// An HTTP message (`flow.HTTP`).
    pub struct Http {
        /// The status code of a response.
        pub code: Option<u32>,
        /// The method (`GET`, ...).
        pub method: String,
        /// The URL.
        pub url: String,
        /// The protocol (`HTTP/1.1`, ...).
        pub protocol: String,
        /// The headers.
        pub headers: Option<Vec<HttpHeader>>,
    }

    /// One HTTP header (`flow.HTTPHeader`).
    pub struct HttpHeader {
        /// Its name.
        pub key: String,
        /// Its value.
        pub value: String,
    }

    /// A Kafka message (`flow.Kafka`, deprecated by Hubble).
    pub struct Kafka {
        /// The error code.
        pub error_code: Option<i32>,
        /// The API version.
        pub api_version: Option<i32>,
        /// The API key (`produce`, `fetch`, ...).
        pub api_key: String,
        /// The correlation ID.
        pub correlation_id: Option<i32>,
        /// The topic.
        pub topic: String,
    }
}
