//! What a proxy saw of a flow: [`Layer7`], with one record of [`Dns`], [`Http`] or
//! [`Kafka`].

use serde::{Deserialize, Serialize};

use crate::enums::L7FlowType;
use crate::wire;

/// A flow's L7 record (`flow.Layer7`, the field `l7`), set on flows of type `L7`. The record is
/// a proto `oneof`: at most one of `dns`, `http` and `kafka` is set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Layer7 {
    /// Request, response or sample.
    #[serde(rename = "type", skip_serializing_if = "L7FlowType::is_unset")]
    pub l7_type: L7FlowType,
    /// The response's latency in nanoseconds (a 64-bit integer: a string in JSON).
    #[serde(
        alias = "latencyNs",
        skip_serializing_if = "Option::is_none",
        serialize_with = "wire::opt_u64_str",
        deserialize_with = "wire::opt_int"
    )]
    pub latency_ns: Option<u64>,
    /// A DNS request or response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
    /// An HTTP request or response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<Http>,
    /// A Kafka request or response (deprecated by Hubble).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka: Option<Kafka>,
}

/// A DNS message as the proxy saw it (`flow.DNS`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Dns {
    /// The name asked, with its trailing dot (`github.com.`).
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "wire::or_default"
    )]
    pub query: String,
    /// The addresses in the answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ips: Option<Vec<String>>,
    /// The answer's TTL in seconds.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "wire::opt_int"
    )]
    pub ttl: Option<u32>,
    /// The CNAMEs in the answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnames: Option<Vec<String>>,
    /// Where the message was observed (`proxy`).
    #[serde(
        alias = "observationSource",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "wire::or_default"
    )]
    pub observation_source: String,
    /// The response code (0 `NOERROR`, 3 `NXDOMAIN`, ...).
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "wire::opt_int"
    )]
    pub rcode: Option<u32>,
    /// The question's types (`A`, `AAAA`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qtypes: Option<Vec<String>>,
    /// The types of the answer's records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rrtypes: Option<Vec<String>>,
}

impl Dns {
    /// The mnemonic of the response code (`NOERROR`, `NXDOMAIN`, ...), or `RCODE<n>` for one
    /// without a name; an unset code is `NOERROR` (jsonpb omits 0).
    pub fn rcode_name(&self) -> String {
        let rcode = self.rcode.unwrap_or(0);
        let name = match rcode {
            0 => "NOERROR",
            1 => "FORMERR",
            2 => "SERVFAIL",
            3 => "NXDOMAIN",
            4 => "NOTIMP",
            5 => "REFUSED",
            6 => "YXDOMAIN",
            7 => "YXRRSET",
            8 => "NXRRSET",
            9 => "NOTAUTH",
            10 => "NOTZONE",
            16 => "BADVERS",
            n => return format!("RCODE{n}"),
        };
        name.to_owned()
    }
}

/// An HTTP message (`flow.HTTP`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Http {
    /// The status code of a response.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "wire::opt_int"
    )]
    pub code: Option<u32>,
    /// The method (`GET`, ...).
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "wire::or_default"
    )]
    pub method: String,
    /// The URL.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "wire::or_default"
    )]
    pub url: String,
    /// The protocol (`HTTP/1.1`, ...).
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "wire::or_default"
    )]
    pub protocol: String,
    /// The headers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<Vec<HttpHeader>>,
}

/// One HTTP header (`flow.HTTPHeader`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpHeader {
    /// Its name.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "wire::or_default"
    )]
    pub key: String,
    /// Its value.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "wire::or_default"
    )]
    pub value: String,
}

/// A Kafka message (`flow.Kafka`, deprecated by Hubble).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Kafka {
    /// The error code.
    #[serde(
        alias = "errorCode",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "wire::opt_int"
    )]
    pub error_code: Option<i32>,
    /// The API version.
    #[serde(
        alias = "apiVersion",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "wire::opt_int"
    )]
    pub api_version: Option<i32>,
    /// The API key (`produce`, `fetch`, ...).
    #[serde(
        alias = "apiKey",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "wire::or_default"
    )]
    pub api_key: String,
    /// The correlation ID.
    #[serde(
        alias = "correlationId",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "wire::opt_int"
    )]
    pub correlation_id: Option<i32>,
    /// The topic.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "wire::or_default"
    )]
    pub topic: String,
}
