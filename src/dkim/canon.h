// DKIM canonicalization (RFC 6376 section 3.4), sans-I/O: header fields and bodies as a signer
// and a verifier must both see them, "simple" or "relaxed". Pure functions over the message
// text; lines end in CRLF (a bare LF is read as a line end too, and written as CRLF).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sluice::dkim {

enum class Canon { kSimple, kRelaxed };

// One header field as it appears: its name and the whole field, continuation lines included,
// with its final CRLF.
struct HeaderField {
  std::string_view name;  // as written
  std::string_view raw;   // "Name: value\r\n\tmore\r\n"
};

// The header fields of a header block (up to the blank line; `text` may hold the body after
// it, which is ignored), in order. A line without a colon that is not a continuation ends
// the block.
std::vector<HeaderField> split_header(std::string_view text);

// Where the body starts: after the first empty line; text.size() when there is none.
size_t body_offset(std::string_view text);

// One field canonicalized, with its CRLF (RFC 6376 3.4.1 and 3.4.2).
std::string canon_header(const HeaderField& f, Canon c);

// The body canonicalized (RFC 6376 3.4.3 and 3.4.4): simple ends in exactly one CRLF (an empty
// body is CRLF); relaxed removes whitespace at line ends, folds runs of whitespace to one
// space, drops empty lines at the end (an empty body stays empty).
std::string canon_body(std::string_view body, Canon c);

// The header fields to sign, in h= order (RFC 6376 5.4.2): each name of `sign` once per
// instance present, each name of `oversign` once more than present (so that none can be
// added), all lower-case. Instances are taken from the bottom up when hashing.
std::vector<std::string> signed_names(const std::vector<HeaderField>& fields,
                                      const std::vector<std::string>& sign,
                                      const std::vector<std::string>& oversign);

// The header hash input for `names` (h=): for each name, the next instance from the bottom of
// `fields` not used yet, canonicalized; nothing for an instance that does not exist.
std::string header_hash_input(const std::vector<HeaderField>& fields,
                              const std::vector<std::string>& names, Canon c);

}  // namespace sluice::dkim
