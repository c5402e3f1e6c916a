// Package secrets encrypts inbox credentials at rest.
//
// Passwords and OAuth refresh tokens are sealed with AES-256-GCM under a
// [Keyring]: one or more 32-byte keys, each named by a short key id, one of
// them active. [Keyring.Seal] always uses the active key; [Keyring.Open]
// uses whichever key the ciphertext names, so credentials sealed under an
// older key still open after a rotation. [Reencrypt] moves every stored
// credential, and [ReencryptWebhooks] every webhook signing secret, to the
// active key, after which old keys may be dropped. Both write with a
// compare-and-set, so they may run while other processes write.
//
// # Ciphertext format
//
// A sealed value is, byte by byte:
//
//	version   1 byte, currently 0x01
//	idlen     1 byte, the length of the key id (1 to 32)
//	keyid     idlen bytes, ASCII letters, digits, '-', '_' or '.'
//	nonce     12 bytes, random
//	sealed    the AES-256-GCM output: ciphertext, then the 16-byte tag
//
// The GCM additional data is the header (version, idlen and keyid) followed
// by the caller's additional data. Credentials use the inbox id as
// additional data, so a ciphertext copied to another inbox, or one whose
// header was altered, fails to open with [ErrAuthentication]. Nonces are
// random; keep each key to well under 2^32 seals (rotation resets the
// count).
//
// # Credential payload
//
// [Credentials] are encoded as JSON ({"password": …, "refresh_token": …})
// before sealing. Their String, GoString, Format and LogValue methods redact
// the secrets, so a credential that reaches a log shows only whether each
// field is set.
//
// # Key sources
//
// [FromEnv] reads the value of HOLDFAST_SECRET_KEY ([EnvVar]): either a
// single base64 key, whose id is the first 8 hex digits of its SHA-256, or
// a comma-separated list "id:base64key,id:base64key" whose first key is
// active.
//
// [LoadOrCreateFile] reads, or on first start creates, a key file with mode
// 0600. It holds one key per line, "id base64key" with the key in padded
// standard base64; the first key is active. Blank lines and lines starting
// with '#' are ignored. A key file that group or others may access is
// refused. [AddKeyToFile] generates a new key and puts it first, keeping
// the old keys.
//
// # Rotation
//
// Every process that opens credentials must know a key before any
// credential is sealed under it. With environment keys on several nodes:
// first add the new key at the end of the list on every node, then move it
// to the front on every node, then run [Reencrypt] (holdfast keys rotate),
// and only then remove the old key. With a key file, [AddKeyToFile]
// followed by [Reencrypt] does the same on a single node.
//
// The Go API is not stable.
package secrets
