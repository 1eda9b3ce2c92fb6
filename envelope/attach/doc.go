// Package attach encrypts files for sealpost messages: a file is encrypted
// as a stream of 64 KiB chunks into a blob that goes to a blob store, and
// the message carries a Pointer to it (the store's id, the file key, the
// length, the blob's digest, a media type and a name). docs/SPEC.md
// section 21 specifies the blob and the pointer byte for byte.
// The chunk format follows age's STREAM (C2SP age.md, "Payload"), itself
// the construction of Hoang, Reyhanitabar, Rogaway and Vizár, "Online
// Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance" (2015).
//
// It is a client package: it links no key-holding sealpost package and the
// relay links none of it (examples/relay stores the blobs and never sees a
// key).
//
// # Format
//
// A blob, version 1 (docs/SPEC.md section 21.2), is
//
//	header   version (1 byte, 1) || nonce (16 random bytes) || commitment (32 bytes)
//	chunks   ChaCha20-Poly1305 of the padded file, 64 KiB per chunk, the last 1 to 64 KiB
//	trailer  ChaCha20-Poly1305 of the file's length (8 bytes, big-endian)
//
// The chunk key and the commitment are HKDF-SHA-256 of the file key, with
// the header's version and nonce as the salt and the labels "sealpost v1
// attach payload key" and "sealpost v1 attach key commitment". Chunk i has
// the nonce i as an 11-byte big-endian counter followed by a flag byte: 0
// for a data chunk, 1 for the trailer, which is the final chunk and numbered
// after the last data chunk. No associated data is needed: the header is
// bound through the key derivation and checked through the commitment.
//
// The padded file is the file followed by zeros up to PaddedLength of its
// length (docs/SPEC.md section 21.3). So the length in the trailer fixes the
// number of data chunks and the blob's size: a blob cut short, extended, with
// chunks reordered, repeated, dropped or taken from another blob (even one
// under the same file key, thanks to the header nonce) fails authentication,
// and a trailer is accepted only at the one place where its length says the
// blob ends. A blob is EncryptedSize(length) bytes: 73 bytes of header and
// trailer and 16 bytes per chunk on top of the padded length.
//
// # Security properties
//
//   - Confidentiality and integrity of the file and its length under the
//     file key, which GenerateKey makes fresh for each file; nothing
//     about the file is in the clear but the blob's size.
//   - A partial file is never passed off as the whole: Reader returns
//     io.EOF only after the trailer authenticated, Download returns nil
//     only after the trailer and the digest checked out, ReaderAt
//     authenticates the trailer when it opens. Output read before that
//     must not be used as the file. Every chunk is authenticated before
//     any of its bytes is handed out.
//   - Key commitment: the header commits to the file key, so one blob
//     opens under one key only. ChaCha20-Poly1305 alone does not commit (a
//     sender could craft one blob that opens to two files under two keys,
//     the "invisible salamanders" attack on attachment franking); the
//     commitment closes that, and a wrong key fails at the header.
//   - The Pointer's digest (SHA-256 of the blob) lets Download detect a
//     store that serves another blob under the id (ErrWrongBlob).
//   - Constant memory: Writer, Reader, ReaderAt, Upload and Download hold
//     one or two chunks, whatever the file's size.
//
// # What the store and the relay learn
//
// The blob's size, so the padded length's bucket; when it is uploaded and
// downloaded, from where, and how often. Not the file's name, type or
// content, and not who it is for: the Pointer travels only inside sealed
// messages. Whoever holds a Pointer can download and read the file, so it
// is as secret as the message that carries it.
//
// # Padding
//
// Files are padded to buckets 5% apart (as Signal pads attachments), from
// MinPadded = 4 KiB up: every file up to 4 KiB is 4 KiB, and above that a
// blob's size tells which of about 14 sizes per doubling the file has.
// Padmé (Nikitin et al., PETS 2019), which internal/pad uses for messages,
// was measured against this over 4 KiB to 2 GiB (TestPaddingOverhead):
//
//	            mean overhead  max overhead  buckets 4 KiB-2 GiB  bits leaked
//	5% buckets          2.5%          5.0%                  271          8.1
//	Padmé               1.4%          6.2%                  545          9.1
//
// Padmé costs about one point less overhead on average, but it keeps about
// 32 sizes per doubling above 64 KiB (its bucket count grows with log log
// n, which only pays off far above the 2 GiB a relay takes), so it tells
// twice as many sizes apart. For files, where a size often identifies a
// known picture or document, leaking one bit less is worth one point of
// bandwidth. The bucket sizes are integers (each is the one before plus a
// twentieth of it), so writer and reader compute the same ones everywhere.
// The floor hides the exact size of the smallest files (a short text's
// length can be its content) for at most 4 KiB each.
//
// # Pointer encoding
//
// A Pointer marshals to (docs/SPEC.md section 21.5), in order: the version (1
// byte, 1), the id (a length byte and the bytes), the key (32 bytes), the
// length (8 bytes, big-endian), the digest (32 bytes), the media type and the
// name (each a length byte and the bytes). Parsing is strict: one encoding
// per pointer, nothing after it, every field in its bounds.
//
// # Transfers
//
// Upload and Download move blobs through a BlobStore with progress
// callbacks and resume a transfer that fails: an upload from the offset
// the store reports (the store may keep only whole parts of what it was
// sent), a download from the first chunk not yet verified. The digest of a
// resumed upload is computed again by encrypting the stored prefix locally
// (encryption is deterministic once the header is made), so the file must
// be seekable; nothing is sent twice. A store's error marked permanent
// (ErrPermanent, or a Permanent method; a 404, a 413) is not retried.
//
// Across a restart of the app's process (docs/SPEC.md section 21.9): an
// upload resumes with ResumeUpload, from the state WithUploadState hands
// out once the store created the blob (the file key and header nonce, so
// the bytes encrypted again are the stored ones, the upload handle, the
// length, name and media type) and the file; a download resumes with
// ResumeDownload from the Pointer and the partial file alone, whose whole
// chunks are encrypted again rather than fetched, for the digest. Both
// states are secret as the Pointer is.
//
// # File names
//
// A Pointer's Name comes from the sender and is shown to the recipient,
// so ValidName refuses what would let it look like another name: control
// and format characters (the bidirectional overrides that turn "gpj.exe"
// into "exe.jpg" on screen, zero-width and other invisible ones), private
// use characters and line separators; it keeps the zero-width joiner and
// non-joiner (scripts and emoji need them), every space and unassigned
// code points (a later Unicode version assigns them, and a pointer must
// parse the same in every build). See ValidName and docs/SPEC.md section
// 21.5.
//
// # Backwards compatibility
//
// The version byte of the header and of the pointer is checked before
// anything else; a later version can change the chunk size, the padding or
// the pointer's fields, and this version refuses it with
// ErrUnsupportedVersion.
package attach
