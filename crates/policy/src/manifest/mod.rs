//! Loading Kubernetes manifests: multi-document YAML in, typed Cilium resources out.
//!
//! Every failure names the file, the document (counted from 1 in the order of the YAML
//! stream; the YAML reader drops empty documents, which are not counted), the key path (`spec.egress[1].toPorts[0].ports[0].port`)
//! and the reason. A key that the resource's schema does not have is a [`Warning`] with its
//! path, as kubectl reports unknown fields: never an error, never silently dropped.
//!
//! Resources other than Cilium's policies (a `DaemonSet`, a `Service`, ...) load as
//! [`Manifest::Other`]: they are kept by name, not modelled here.
//!
//! YAML is read with serde-saphyr: pure Rust, built not to panic on untrusted input, with line
//! and column in its errors. (`serde_yaml` is deprecated, and its maintained forks parse with
//! `unsafe-libyaml`, a machine translation of C.)

pub mod source;
pub mod types;
pub(crate) mod validate;

use std::fmt;
use std::path::Path;

use serde::de::DeserializeOwned;

pub use source::{SourceError, read_text};
pub use types::{LocalRedirectPolicy, NetworkPolicy};

/// A numeric port as Cilium parses one (Go's base-0 integers: `53`, `0x35`); `None` for a
/// named port or anything out of range.
pub fn parse_port(text: &str) -> Option<u16> {
    validate::parse_go_uint(text).and_then(|n| u16::try_from(n).ok())
}

/// The IP protocol number of a port's `protocol` (`TCP`, `UDP` or `SCTP`, any case).
pub fn port_protocol(text: &str) -> Option<u8> {
    match validate::protocol(text)? {
        "TCP" => Some(crate::policymap::PROTO_TCP),
        "UDP" => Some(crate::policymap::PROTO_UDP),
        "SCTP" => Some(crate::policymap::PROTO_SCTP),
        _ => None,
    }
}

/// The API group and version of the Cilium resources fqdnpath reads.
pub const CILIUM_API_VERSION: &str = "cilium.io/v2";

/// Where in the input something is: file and document.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The file name as given (or a label such as `<inline>`).
    pub file: String,
    /// The document's position in the YAML stream, from 1 (empty documents not counted).
    pub document: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: document {}", self.file, self.document)
    }
}

/// One loaded resource.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Manifest {
    /// A `CiliumNetworkPolicy` or `CiliumClusterwideNetworkPolicy`, validated.
    NetworkPolicy(NetworkPolicy),
    /// A `CiliumLocalRedirectPolicy`, validated.
    LocalRedirectPolicy(LocalRedirectPolicy),
    /// Any other resource, kept by identity only.
    Other {
        /// Its `apiVersion`.
        api_version: String,
        /// Its `kind`.
        kind: String,
        /// Its `metadata.name`.
        name: String,
        /// Its `metadata.namespace`.
        namespace: Option<String>,
    },
}

impl Manifest {
    /// The resource's kind.
    pub fn kind(&self) -> &str {
        match self {
            Self::NetworkPolicy(p) => &p.kind,
            Self::LocalRedirectPolicy(p) => &p.kind,
            Self::Other { kind, .. } => kind,
        }
    }

    /// The policy, if this is a `CiliumNetworkPolicy` or `CiliumClusterwideNetworkPolicy`.
    pub fn into_network_policy(self) -> Option<NetworkPolicy> {
        match self {
            Self::NetworkPolicy(p) => Some(p),
            _ => None,
        }
    }

    /// The resource's name.
    pub fn name(&self) -> &str {
        match self {
            Self::NetworkPolicy(p) => &p.metadata.name,
            Self::LocalRedirectPolicy(p) => &p.metadata.name,
            Self::Other { name, .. } => name,
        }
    }
}

/// A resource and where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Located<T> {
    /// File and document.
    pub origin: Origin,
    /// The resource.
    pub value: T,
}

/// A key the schema does not have (kubectl: "unknown field").
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Warning {
    /// File and document.
    pub origin: Origin,
    /// The key's path, e.g. `spec.egress[0].toFQDN`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.origin, self.path, self.message)
    }
}

/// What a file held.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Loaded {
    /// The resources, in file order.
    pub manifests: Vec<Located<Manifest>>,
    /// Unknown fields and other findings that do not stop loading.
    pub warnings: Vec<Warning>,
}

impl Loaded {
    /// The network policies among the resources, in file order.
    pub fn network_policies(self) -> Vec<NetworkPolicy> {
        self.manifests
            .into_iter()
            .filter_map(|m| m.value.into_network_policy())
            .collect()
    }
}

/// Why a file could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The file could not be read, or is not YAML.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A document is not a valid resource.
    #[error("{origin}: {path}: {reason}", path = if path.is_empty() { "(document)" } else { path })]
    Invalid {
        /// File and document.
        origin: Origin,
        /// The key's path; empty for the document as a whole.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

impl ManifestError {
    fn invalid(origin: &Origin, path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            origin: origin.clone(),
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// Loads every resource of a YAML file.
pub fn load_file(path: &Path) -> Result<Loaded, ManifestError> {
    let text = read_text(path)?;
    load_str(&path.display().to_string(), &text)
}

/// Loads every resource of YAML `text`; `file` names it in errors and warnings.
pub fn load_str(file: &str, text: &str) -> Result<Loaded, ManifestError> {
    let documents: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(text).map_err(|e| SourceError::yaml(file, e))?;
    let mut loaded = Loaded::default();
    for (index, document) in documents.into_iter().enumerate() {
        let origin = Origin {
            file: file.to_owned(),
            document: index + 1,
        };
        if document.is_null() {
            continue;
        }
        let manifest = load_document(&origin, document, &mut loaded.warnings)?;
        loaded.manifests.push(Located {
            origin,
            value: manifest,
        });
    }
    Ok(loaded)
}

fn string_field<'a>(
    origin: &Origin,
    map: &'a serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> Result<&'a str, ManifestError> {
    match map.get(key) {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s),
        Some(_) => Err(ManifestError::invalid(
            origin,
            key,
            "must be a non-empty string",
        )),
        None => Err(ManifestError::invalid(origin, key, "is required")),
    }
}

fn load_document(
    origin: &Origin,
    document: serde_json::Value,
    warnings: &mut Vec<Warning>,
) -> Result<Manifest, ManifestError> {
    let serde_json::Value::Object(map) = &document else {
        return Err(ManifestError::invalid(
            origin,
            "",
            "a manifest must be a mapping with apiVersion and kind",
        ));
    };
    let api_version = string_field(origin, map, "apiVersion")?.to_owned();
    let kind = string_field(origin, map, "kind")?.to_owned();
    let cilium_kind = matches!(
        kind.as_str(),
        "CiliumNetworkPolicy" | "CiliumClusterwideNetworkPolicy" | "CiliumLocalRedirectPolicy"
    );
    if cilium_kind && api_version != CILIUM_API_VERSION {
        return Err(ManifestError::invalid(
            origin,
            "apiVersion",
            format!("{kind} is read as {CILIUM_API_VERSION}, not {api_version}"),
        ));
    }
    match kind.as_str() {
        "CiliumNetworkPolicy" | "CiliumClusterwideNetworkPolicy" => {
            let mut policy: NetworkPolicy = typed(origin, document, warnings)?;
            if !policy.is_clusterwide() && policy.metadata.namespace.is_none() {
                policy.metadata.namespace = Some("default".to_owned());
            }
            check_metadata(origin, &policy.metadata, warnings)?;
            validate::network_policy(&policy)
                .map_err(|(path, reason)| ManifestError::invalid(origin, path, reason))?;
            Ok(Manifest::NetworkPolicy(policy))
        }
        "CiliumLocalRedirectPolicy" => {
            let mut policy: LocalRedirectPolicy = typed(origin, document, warnings)?;
            if policy.metadata.namespace.is_none() {
                policy.metadata.namespace = Some("default".to_owned());
            }
            check_metadata(origin, &policy.metadata, warnings)?;
            validate::local_redirect_policy(&policy)
                .map_err(|(path, reason)| ManifestError::invalid(origin, path, reason))?;
            Ok(Manifest::LocalRedirectPolicy(policy))
        }
        _ => {
            let metadata = map.get("metadata");
            let text = |key: &str| {
                metadata
                    .and_then(|m| m.get(key))
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned)
            };
            Ok(Manifest::Other {
                api_version,
                kind,
                name: text("name").unwrap_or_default(),
                namespace: text("namespace"),
            })
        }
    }
}

fn check_metadata(
    origin: &Origin,
    metadata: &types::Metadata,
    warnings: &mut Vec<Warning>,
) -> Result<(), ManifestError> {
    if metadata.name.is_empty() {
        return Err(ManifestError::invalid(
            origin,
            "metadata.name",
            "is required",
        ));
    }
    for key in metadata.other.keys() {
        if !types::OBJECT_META_FIELDS.contains(&key.as_str()) {
            warnings.push(Warning {
                origin: origin.clone(),
                path: format!("metadata.{key}"),
                message: "unknown field".to_owned(),
            });
        }
    }
    Ok(())
}

/// Deserialises a document into `T`, reporting unknown keys as warnings and a type error with
/// the path of the key where it happened.
fn typed<T: DeserializeOwned>(
    origin: &Origin,
    document: serde_json::Value,
    warnings: &mut Vec<Warning>,
) -> Result<T, ManifestError> {
    let mut unknown = Vec::new();
    let mut record = |path: serde_ignored::Path<'_>| unknown.push(key_path(&path));
    let deserializer = serde_ignored::Deserializer::new(document, &mut record);
    let value = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        ManifestError::invalid(origin, path, e.into_inner().to_string())
    })?;
    warnings.extend(unknown.into_iter().map(|path| Warning {
        origin: origin.clone(),
        path,
        message: "unknown field".to_owned(),
    }));
    Ok(value)
}

/// A `serde_ignored` path as kubectl writes one: `spec.egress[0].toFQDN`.
fn key_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", key_path(parent)),
        Path::Map { parent, key } => {
            let parent = key_path(parent);
            if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => key_path(parent),
    }
}
