//! SNMP agents name their maker in `sysObjectID`: an OID under the maker's private
//! enterprise arc, 1.3.6.1.4.1.N, where N is assigned by IANA ("Private Enterprise
//! Numbers"). This is a small table of the numbers of common network and server vendors.

/// `(enterprise number, maker)`.
const ENTERPRISES: &[(u32, &str)] = &[
    (2, "IBM"),
    (9, "Cisco"),
    (11, "HP"),
    (42, "Sun Microsystems"),
    (43, "3Com"),
    (171, "D-Link"),
    (311, "Microsoft"),
    (318, "APC"),
    (674, "Dell"),
    (789, "NetApp"),
    (890, "ZyXEL"),
    (1588, "Brocade"),
    (1916, "Extreme Networks"),
    (1991, "Foundry Networks"),
    (2011, "Huawei"),
    (2021, "UCD-SNMP"),
    (2620, "Check Point"),
    (2636, "Juniper Networks"),
    (3224, "NetScreen"),
    (3375, "F5 Networks"),
    (4526, "Netgear"),
    (6027, "Force10 Networks"),
    (6486, "Alcatel-Lucent"),
    (6574, "Synology"),
    (6876, "VMware"),
    (8072, "Net-SNMP"),
    (8741, "SonicWall"),
    (11863, "TP-Link"),
    (12356, "Fortinet"),
    (14179, "Cisco (Airespace)"),
    (14988, "MikroTik"),
    (24681, "QNAP"),
    (25461, "Palo Alto Networks"),
    (30065, "Arista Networks"),
    (41112, "Ubiquiti Networks"),
];

/// The enterprise number of an OID under 1.3.6.1.4.1, if it is one.
pub fn number(oid: &str) -> Option<u32> {
    let rest = oid.strip_prefix("1.3.6.1.4.1.")?;
    rest.split('.').next()?.parse().ok()
}

/// The maker an enterprise number stands for, when the table knows it.
pub fn name(n: u32) -> Option<&'static str> {
    ENTERPRISES
        .binary_search_by_key(&n, |(k, _)| *k)
        .ok()
        .map(|i| ENTERPRISES[i].1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_and_found() {
        assert!(ENTERPRISES.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(number("1.3.6.1.4.1.2636.1.1.1.2.29"), Some(2636));
        assert_eq!(name(2636), Some("Juniper Networks"));
        assert_eq!(number("1.3.6.1.2.1.1"), None);
        assert_eq!(name(999_999), None);
    }
}
