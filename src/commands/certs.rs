//! `zerodrop certs generate`: development certificates as PEM files.

use anyhow::Context as _;

/// `zerodrop certs generate`: PEM files for development and tests; keys are written 0600.
pub fn certs_generate(args: &crate::cli::CertsArgs) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let validity = time::Duration::seconds(i64::try_from(args.validity.as_secs())?);
    let bundle = crate::certs::generate(&args.dns, &args.ip, validity)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    for (file, text, private) in [
        ("ca.crt", &bundle.ca_cert_pem, false),
        ("ca.key", &bundle.ca_key_pem, true),
        ("tls.crt", &bundle.cert_pem, false),
        ("tls.key", &bundle.key_pem, true),
    ] {
        let path = args.out.join(file);
        let mode = if private { 0o600 } else { 0o644 };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        std::io::Write::write_all(&mut f, text.as_bytes())?;
    }
    println!(
        "wrote ca.crt, ca.key, tls.crt, tls.key to {}",
        args.out.display()
    );
    Ok(())
}
