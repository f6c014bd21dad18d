//! Verifier keys and signed notes, ported from `golang.org/x/mod/sumdb/note`: a key is
//! `<name>+<hash>+<base64(alg byte + public key)>`, and a note is text, a blank line, then signature lines
//! `— <name> <base64(key hash + signature)>`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

/// The algorithm byte of an Ed25519 key, the only one Go defines.
const ALG_ED25519: u8 = 1;

/// Go refuses notes with more signatures than this, so a server cannot make a client verify forever.
const MAX_SIGNATURES: usize = 100;

/// Why a verifier key string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid checksum database key {shown:?}: {reason}")]
pub struct KeyError {
    shown: String,
    reason: String,
}

/// A checksum database's public key, as `GOSUMDB` names it (`sum.golang.org+033de0ae+Ac4z…`).
#[derive(Clone, Debug)]
pub struct VerifierKey {
    name: String,
    hash: u32,
    key: VerifyingKey,
    text: String,
}

impl VerifierKey {
    /// Parses `name+hash+base64key` as Go's `note.NewVerifier` does: `hash` is 8 hex digits equal to the
    /// first 4 bytes of SHA-256(name + "\n" + key), and the key is algorithm 1 (Ed25519) with 32 bytes.
    pub fn parse(text: &str) -> Result<VerifierKey, KeyError> {
        let fail = |reason: &str| KeyError {
            // Keys are public, but a long hostile string is cut to keep messages small.
            shown: text.chars().take(120).collect(),
            reason: reason.to_string(),
        };
        let text = text.trim();
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(hash16), Some(key64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(fail("want <name>+<8 hex digits>+<base64 key>"));
        };
        if !is_valid_name(name) {
            return Err(fail(
                "the name must be non-empty, without spaces or '+' (a host name such as sum.golang.org)",
            ));
        }
        if hash16.len() != 8 || !hash16.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(fail("the key hash must be 8 hexadecimal digits"));
        }
        let hash = u32::from_str_radix(hash16, 16).map_err(|_| fail("bad key hash"))?;
        let key = STANDARD
            .decode(key64)
            .map_err(|_| fail("the key is not valid base64"))?;
        let Some((&alg, public)) = key.split_first() else {
            return Err(fail("the key is empty"));
        };
        if hash != key_hash(name, &key) {
            return Err(fail(
                "the key hash does not match the name and key (a mistyped or truncated key?)",
            ));
        }
        if alg != ALG_ED25519 {
            return Err(fail(&format!(
                "unknown key algorithm {alg} (only 1, Ed25519, exists)"
            )));
        }
        let public: [u8; 32] = public
            .try_into()
            .map_err(|_| fail("an Ed25519 key has 32 bytes after the algorithm byte"))?;
        let key = VerifyingKey::from_bytes(&public)
            .map_err(|_| fail("the key is not a valid Ed25519 point"))?;
        Ok(VerifierKey {
            name: name.to_string(),
            hash,
            key,
            text: text.to_string(),
        })
    }

    /// The database's name (`sum.golang.org`), which signs its tree notes.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key exactly as given (trimmed), as `GOSUMDB` would carry it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Checks a signed note (Go's `note.Open` with this key as the only known verifier) and returns its
    /// text. Signatures by other keys are ignored, as Go ignores unknown verifiers; a note that this key did
    /// not sign, or signed wrongly, is refused.
    pub(crate) fn open<'a>(&self, msg: &'a [u8]) -> Result<&'a str, NoteError> {
        let msg = std::str::from_utf8(msg).map_err(|_| NoteError::Malformed)?;
        if msg.chars().any(|c| c < ' ' && c != '\n') {
            return Err(NoteError::Malformed);
        }
        let split = msg.rfind("\n\n").ok_or(NoteError::Malformed)?;
        let (text, sigs) = (&msg[..split + 1], &msg[split + 2..]);
        if !sigs.ends_with('\n') {
            return Err(NoteError::Malformed);
        }
        let mut verified = false;
        for (count, line) in sigs[..sigs.len() - 1].split('\n').enumerate() {
            if count >= MAX_SIGNATURES {
                return Err(NoteError::Malformed);
            }
            let line = line.strip_prefix("— ").ok_or(NoteError::Malformed)?;
            let (name, b64) = line.split_once(' ').unwrap_or((line, ""));
            let sig = STANDARD.decode(b64).map_err(|_| NoteError::Malformed)?;
            if !is_valid_name(name) || b64.is_empty() || sig.len() < 5 {
                return Err(NoteError::Malformed);
            }
            let hash = u32::from_be_bytes([sig[0], sig[1], sig[2], sig[3]]);
            if name != self.name || hash != self.hash {
                continue; // another key's signature, as Go's UnverifiedSigs
            }
            let valid = Signature::from_slice(&sig[4..])
                .is_ok_and(|sig| self.key.verify_strict(text.as_bytes(), &sig).is_ok());
            if !valid {
                return Err(NoteError::BadSignature);
            }
            verified = true;
        }
        if verified {
            Ok(text)
        } else {
            Err(NoteError::NotSigned)
        }
    }
}

/// Why a signed note was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoteError {
    Malformed,
    NotSigned,
    BadSignature,
}

/// Go's `isValidName`: non-empty UTF-8 without white space or `+`.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// The first 4 bytes, big-endian, of SHA-256(name + "\n" + alg byte + key).
fn key_hash(name: &str, key: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update(key);
    let sum = h.finalize();
    u32::from_be_bytes([sum[0], sum[1], sum[2], sum[3]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer as _, SigningKey};

    /// A key pair made here the way Go's `note.GenerateKey` lays it out.
    fn generated(name: &str, seed: u8) -> (SigningKey, String) {
        let signing = SigningKey::from_bytes(&[seed; 32]);
        let mut key = vec![ALG_ED25519];
        key.extend_from_slice(signing.verifying_key().as_bytes());
        let text = format!(
            "{name}+{:08x}+{}",
            key_hash(name, &key),
            STANDARD.encode(&key)
        );
        (signing, text)
    }

    fn signed(signing: &SigningKey, name: &str, hash: u32, text: &str) -> String {
        let mut sig = hash.to_be_bytes().to_vec();
        sig.extend_from_slice(&signing.sign(text.as_bytes()).to_bytes());
        format!("{text}\n— {name} {}\n", STANDARD.encode(sig))
    }

    #[test]
    fn a_generated_key_parses_and_opens_the_notes_it_signed() {
        let (signing, text) = generated("sum.example", 1);
        let key = VerifierKey::parse(&text).unwrap();
        assert_eq!(key.name(), "sum.example");
        let note = signed(&signing, "sum.example", key.hash, "hello\n");
        assert_eq!(key.open(note.as_bytes()), Ok("hello\n"));
    }

    #[test]
    fn bad_key_strings_are_refused_with_the_reason() {
        let (_, good) = generated("sum.example", 1);
        let (name, rest) = good.split_once('+').unwrap();
        let (hash, key64) = rest.split_once('+').unwrap();
        let mut flipped_key = STANDARD.decode(key64).unwrap();
        flipped_key[5] ^= 1;
        let cases = [
            ("".to_string(), "want <name>"),
            (name.to_string(), "want <name>"),
            (format!("+{hash}+{key64}"), "the name must be"),
            (format!("sum example+{hash}+{key64}"), "the name must be"),
            (format!("{name}+{}+{key64}", &hash[..7]), "8 hexadecimal"),
            (format!("{name}+zzzzzzzz+{key64}"), "8 hexadecimal"),
            (format!("{name}+{hash}+{key64}!"), "not valid base64"),
            (format!("{name}+{hash}+"), "the key is empty"),
            (
                format!("{name}+{hash}+{}", STANDARD.encode(flipped_key)),
                "does not match",
            ),
            (format!("other.example+{hash}+{key64}"), "does not match"),
        ];
        for (text, reason) in cases {
            let err = VerifierKey::parse(&text).expect_err(&text).to_string();
            assert!(err.contains(reason), "{text:?}: {err}");
        }
        // A well-formed key of another algorithm, or of the wrong length, with a correct hash.
        for (key, reason) in [
            (vec![2u8; 33], "unknown key algorithm 2"),
            (vec![1u8; 20], "32 bytes"),
        ] {
            let text = format!("n+{:08x}+{}", key_hash("n", &key), STANDARD.encode(&key));
            let err = VerifierKey::parse(&text).unwrap_err().to_string();
            assert!(err.contains(reason), "{text}: {err}");
        }
    }

    #[test]
    fn a_note_signed_by_another_key_or_with_a_bad_signature_is_refused() {
        let (signing, text) = generated("sum.example", 1);
        let key = VerifierKey::parse(&text).unwrap();
        let (other, _) = generated("sum.example", 2);
        let by_other_key_same_name = signed(&other, "sum.example", key.hash, "hello\n");
        assert_eq!(
            key.open(by_other_key_same_name.as_bytes()),
            Err(NoteError::BadSignature)
        );
        let by_other_name = signed(&signing, "other.example", key.hash, "hello\n");
        assert_eq!(
            key.open(by_other_name.as_bytes()),
            Err(NoteError::NotSigned)
        );
        let good = signed(&signing, "sum.example", key.hash, "hello\n");
        let altered = good.replacen("hello", "hellp", 1);
        assert_eq!(key.open(altered.as_bytes()), Err(NoteError::BadSignature));
        assert_eq!(key.open(b"hello\n"), Err(NoteError::Malformed));
    }

    #[test]
    fn a_relayed_latest_or_lookup_passes_only_with_a_tree_note_signed_by_the_key() {
        let (signing, text) = generated("sum.example", 1);
        let key = VerifierKey::parse(&text).unwrap();
        let tree = format!("go.sum database tree\n3\n{}=\n", "A".repeat(43));
        let latest = signed(&signing, "sum.example", key.hash, &tree);
        assert_eq!(
            crate::check_signed_answer(&key, latest.as_bytes(), false),
            Ok(())
        );
        let lookup = format!("2\nexample.com/m v1.0.0 h1:x=\n\n{latest}");
        assert_eq!(
            crate::check_signed_answer(&key, lookup.as_bytes(), true),
            Ok(())
        );

        let forged = latest.replacen("\n3\n", "\n4\n", 1);
        let why = crate::check_signed_answer(&key, forged.as_bytes(), false).unwrap_err();
        assert!(why.contains("invalid signature"), "{why}");
        let (other, _) = generated("other.example", 2);
        let by_other = signed(&other, "other.example", 7, &tree);
        let why = crate::check_signed_answer(&key, by_other.as_bytes(), false).unwrap_err();
        assert!(why.contains("not signed by"), "{why}");
        let not_a_tree = signed(&signing, "sum.example", key.hash, "hello\n");
        assert!(crate::check_signed_answer(&key, not_a_tree.as_bytes(), false).is_err());
        assert!(crate::check_signed_answer(&key, b"<html>", true).is_err());
    }
}
