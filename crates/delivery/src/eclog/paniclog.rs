//! Momentum's paniclog (`content/momentum/4/log-formats-paniclog.md` in SparkPost/support-docs):
//! `TIME:text`, one system event per line. Bindery writes its startup line there and every
//! warning and error it logs (`Log_Errors`), so the file is empty in normal running except
//! for the startup lines, as Momentum's page says it should be.

pub fn panic(now: u64, text: &str) -> String {
    let mut out = format!("{now}:");
    super::fields::flat(text, &mut out);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_line_per_event() {
        assert_eq!(super::panic(1307461172, "a\nb"), "1307461172:a b\n");
    }
}
