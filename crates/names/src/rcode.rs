//! DNS response codes by their mnemonics, as Hubble and `dig` print them.

/// The mnemonic of DNS response code `rcode` (`NOERROR`, `FORMERR`, `SERVFAIL`, `NXDOMAIN`,
/// `NOTIMP`, `REFUSED`, `YXDOMAIN`, `YXRRSET`, `NXRRSET`, `NOTAUTH`, `NOTZONE`, `BADVERS`), or
/// `RCODE<n>` for one without a name.
pub fn rcode_name(rcode: u16) -> String {
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

#[cfg(test)]
mod tests {
    use super::rcode_name;

    #[test]
    fn named_codes_print_their_mnemonic_and_others_their_number() {
        assert_eq!(rcode_name(0), "NOERROR");
        assert_eq!(rcode_name(3), "NXDOMAIN");
        assert_eq!(rcode_name(16), "BADVERS");
        assert_eq!(rcode_name(11), "RCODE11");
    }
}
