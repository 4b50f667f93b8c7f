//! classchat's own RS256 key, which signs Deep Linking responses (LTI-DL 2.0 §4.2) and is
//! published at `/lti/jwks.json`.
//!
//! Generated on first use (2048-bit, the `rsa` crate's keygen) and stored in the database,
//! so every replica signs with the same key. The private key (PKCS#8) is **encrypted at
//! rest** by [`crate::sealed`] (XChaCha20-Poly1305 under an HKDF key from AUTH_SECRET for
//! this purpose), bound to its `kid`; AUTH_SECRET_PREVIOUS opens keys sealed before a
//! secret rotation. Signing uses ring (constant-time RSA), not
//! the `rsa` crate (RUSTSEC-2023-0071). A rotation makes a new current key and keeps the
//! old one published as the previous key, so platforms that cached it keep verifying.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde_json::{Value, json};

use crate::store::Store;
use crate::store::lti::ToolKeyRow;

/// What seals the private key: [`crate::sealed::Sealer`] for [`SEAL_PURPOSE`].
pub type SealKeys = crate::sealed::Sealer;

/// The sealing purpose of classchat's LTI private keys.
pub const SEAL_PURPOSE: &str = "lti tool key";

/// The key that signs now.
pub struct ToolKey {
    pub kid: String,
    pair: RsaKeyPair,
}

impl std::fmt::Debug for ToolKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ToolKey({})", self.kid)
    }
}

impl ToolKey {
    /// A compact JWS (RS256, `kid` in the header) over `claims`.
    pub fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        let header = json!({ "alg": "RS256", "typ": "JWT", "kid": self.kid });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?)
        );
        let mut sig = vec![0u8; self.pair.public().modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                signing_input.as_bytes(),
                &mut sig,
            )
            .map_err(|_| anyhow::anyhow!("RSA signing failed"))?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

fn seal(keys: &SealKeys, kid: &str, plain: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(keys.seal(plain, kid.as_bytes()))
}

fn open(keys: &SealKeys, kid: &str, sealed: &str) -> Option<Vec<u8>> {
    let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
    keys.open(&bytes, kid.as_bytes()).ok()
}

/// A new key pair, sealed, with its public JWK.
async fn generate(seal_keys: &SealKeys) -> anyhow::Result<ToolKeyRow> {
    let (der, n, e) = tokio::task::spawn_blocking(|| -> anyhow::Result<_> {
        use rsa::pkcs8::EncodePrivateKey;
        use rsa::traits::PublicKeyParts;
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)?;
        let der = key.to_pkcs8_der()?.as_bytes().to_vec();
        Ok((der, key.n().to_bytes_be(), key.e().to_bytes_be()))
    })
    .await??;
    let kid = crate::teachers::new_id('k');
    let jwk = json!({
        "kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
        "n": URL_SAFE_NO_PAD.encode(n), "e": URL_SAFE_NO_PAD.encode(e),
    });
    Ok(ToolKeyRow {
        sealed: seal(seal_keys, &kid, &der),
        public_jwk: jwk.to_string(),
        current: Some(1),
        created_ms: crate::basics::now_ms(),
        kid,
    })
}

/// The key that signs now: the stored current key, or a new one on first use (or when the
/// stored one cannot be opened with AUTH_SECRET or AUTH_SECRET_PREVIOUS any more).
pub async fn current(store: &Store, seal_keys: &SealKeys) -> anyhow::Result<ToolKey> {
    for attempt in 0..2 {
        let rows = store.lti_tool_keys().await?;
        match rows.first().filter(|r| r.current.is_some()) {
            Some(row) => {
                if let Some(der) = open(seal_keys, &row.kid, &row.sealed) {
                    let pair = RsaKeyPair::from_pkcs8(&der)
                        .map_err(|e| anyhow::anyhow!("the stored LTI key is unusable: {e}"))?;
                    return Ok(ToolKey {
                        kid: row.kid.clone(),
                        pair,
                    });
                }
                tracing::warn!(kid = %row.kid, "the LTI signing key was sealed under another AUTH_SECRET: making a new one");
                store
                    .lti_add_tool_key(&generate(seal_keys).await?, true)
                    .await?;
            }
            None => {
                // Another replica may win this race: read again and use its key.
                store
                    .lti_add_tool_key(&generate(seal_keys).await?, false)
                    .await?;
            }
        }
        if attempt == 1 {
            break;
        }
    }
    anyhow::bail!("no usable LTI signing key after generating one")
}

/// Makes a new current key; the old one stays published as the previous key. Returns the
/// new `kid`.
pub async fn rotate(store: &Store, seal_keys: &SealKeys) -> anyhow::Result<String> {
    let row = generate(seal_keys).await?;
    store.lti_add_tool_key(&row, true).await?;
    Ok(row.kid)
}

/// `/lti/jwks.json`: the current key and the previous one (the newest older key).
pub async fn published(store: &Store, seal_keys: &SealKeys) -> anyhow::Result<Value> {
    current(store, seal_keys).await?;
    let rows = store.lti_tool_keys().await?;
    let keys: Vec<Value> = rows
        .iter()
        .take(2)
        .filter_map(|r| serde_json::from_str(&r.public_jwk).ok())
        .collect();
    Ok(json!({ "keys": keys }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_with_the_current_or_previous_secret_only() {
        use secrecy::SecretString;
        let a = SecretString::from("first-secret-0123456789abcdef0123456789");
        let b = SecretString::from("second-secret-0123456789abcdef012345678");
        let with = |current: &SecretString, previous: Option<&SecretString>| {
            SealKeys::new(SEAL_PURPOSE, current, previous)
        };
        let sealed = seal(&with(&a, None), "k_1", b"private");
        assert_eq!(
            open(&with(&a, None), "k_1", &sealed).as_deref(),
            Some(&b"private"[..])
        );
        assert_eq!(
            open(&with(&b, Some(&a)), "k_1", &sealed).as_deref(),
            Some(&b"private"[..])
        );
        assert_eq!(open(&with(&b, None), "k_1", &sealed), None, "wrong secret");
        assert_eq!(open(&with(&a, None), "k_2", &sealed), None, "kid is bound");
        assert!(!sealed.contains("private"));
    }
}
