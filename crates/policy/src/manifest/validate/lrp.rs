//! Cilium's validation of Local Redirect Policies (`pkg/loadbalancer/redirectpolicy`): the
//! frontend matcher, the backend selector and the ports on both sides.

use std::net::IpAddr;

use super::ports::{is_svc_name, parse_go_uint, protocol};
use super::{Failure, fail, label_selector};
use crate::manifest::types::{LocalRedirectPolicy, LrpPort};

pub(crate) fn local_redirect_policy(policy: &LocalRedirectPolicy) -> Result<(), Failure> {
    let spec = &policy.spec;
    let frontend = &spec.redirect_frontend;
    let (kind, ports, named) = match (&frontend.address_matcher, &frontend.service_matcher) {
        (None, None) => {
            return fail(
                "spec.redirectFrontend",
                "both address and service matchers can not be empty",
            );
        }
        (Some(_), Some(_)) => {
            return fail(
                "spec.redirectFrontend",
                "both address and service matchers can not be specified",
            );
        }
        (Some(address), None) => {
            if address.ip.parse::<IpAddr>().is_err() {
                return fail(
                    "spec.redirectFrontend.addressMatcher.ip",
                    format!("invalid address matcher IP {:?}", address.ip),
                );
            }
            if address.to_ports.is_empty() {
                return fail(
                    "spec.redirectFrontend.addressMatcher.toPorts",
                    "an address matcher needs at least one port",
                );
            }
            (
                "addressMatcher",
                &address.to_ports,
                address.to_ports.len() > 1,
            )
        }
        (None, Some(service)) => {
            if service.service_name.is_empty() {
                return fail(
                    "spec.redirectFrontend.serviceMatcher.serviceName",
                    "kubernetes service name can not be empty",
                );
            }
            let namespace = policy.metadata.namespace.as_deref().unwrap_or("default");
            if service.namespace != namespace {
                return fail(
                    "spec.redirectFrontend.serviceMatcher.namespace",
                    format!(
                        "kubernetes service namespace {:?} does not match the CiliumLocalRedirectPolicy namespace {namespace:?}",
                        service.namespace
                    ),
                );
            }
            (
                "serviceMatcher",
                &service.to_ports,
                service.to_ports.len() > 1,
            )
        }
    };
    let mut frontend_protocols = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let at = format!("spec.redirectFrontend.{kind}.toPorts[{i}]");
        frontend_protocols.push(lrp_port(&at, port, named)?);
    }
    let backend = &spec.redirect_backend;
    label_selector(
        "spec.redirectBackend.localEndpointSelector",
        &backend.local_endpoint_selector,
    )?;
    if backend.to_ports.is_empty() {
        return fail(
            "spec.redirectBackend.toPorts",
            "backend ports must be specified",
        );
    }
    let named = named || backend.to_ports.len() > 1;
    let mut backend_protocols = Vec::new();
    for (i, port) in backend.to_ports.iter().enumerate() {
        let at = format!("spec.redirectBackend.toPorts[{i}]");
        backend_protocols.push(lrp_port(&at, port, named)?);
    }
    if frontend_protocols.len() == 1 && backend_protocols[0] != frontend_protocols[0] {
        return fail(
            "spec.redirectBackend.toPorts[0].protocol",
            "backend protocol must match with frontend protocol",
        );
    }
    Ok(())
}

/// Checks one LRP port (`SanitizePortInfo`); returns its protocol.
fn lrp_port(path: &str, port: &LrpPort, named: bool) -> Result<&'static str, Failure> {
    let text = port.port.0.as_str();
    if text.is_empty() {
        return fail(format!("{path}.port"), "port must be specified");
    }
    match parse_go_uint(text).and_then(|n| u16::try_from(n).ok()) {
        None => {
            return fail(
                format!("{path}.port"),
                format!("unable to parse port {text:?}"),
            );
        }
        Some(0) => return fail(format!("{path}.port"), "port cannot be 0"),
        Some(_) => {}
    }
    let name = port.name.as_deref().unwrap_or("");
    if named {
        if name.is_empty() {
            return fail(
                format!("{path}.name"),
                format!("port {text} must have a valid IANA_SVC_NAME, as there are multiple ports"),
            );
        }
        if !is_svc_name(name) {
            return fail(
                format!("{path}.name"),
                format!("port name {name} isn't a valid IANA_SVC_NAME"),
            );
        }
    }
    match protocol(&port.protocol) {
        Some(p @ ("TCP" | "UDP" | "SCTP")) => Ok(p),
        _ => fail(
            format!("{path}.protocol"),
            format!(
                "invalid protocol {:?}: must be TCP, UDP or SCTP",
                port.protocol
            ),
        ),
    }
}
