// Package acl decides, for a source address, whether it may connect at all:
// the network gate the gateway applies to every accepted connection before
// reading a TLS byte. It owns the allow/deny rule lists, their text format
// and the prefix matcher behind them, for IPv4 and IPv6.
//
// # Semantics
//
// A rule allows or ("!") denies a prefix. The most specific rule that
// contains the address decides; if none does, the address is denied.
// So "10.0.0.0/8,!10.9.0.0/16,10.9.8.7" allows 10.9.8.7 and 10.1.2.3 and
// denies 10.9.1.1 and 192.0.2.1. IPv4-mapped IPv6 addresses
// (::ffff:10.1.2.3) are matched as IPv4 and zones are ignored; IPv4 rules
// never match IPv6 addresses or the reverse. In rules, IPv4-mapped prefixes
// (::ffff:10.0.0.0/104) are converted to their IPv4 form (10.0.0.0/8):
// since addresses are unmapped before matching, the IPv6 form could never
// match and would be a silent mistake. See ParseRule for the text of one
// rule and Parse for files.
//
// A Set is immutable and safe for concurrent use; a reload builds a new Set
// and stores it in a Holder, which readers consult without locks.
//
// # Data structure
//
// A lookup costs one pass down a multibit trie with 8-bit strides, that is,
// at most 4 steps for IPv4 and 16 for IPv6, and never allocates. With a
// cold cache, its cost is the number of dependent memory loads, so the
// layout aims at one cache line per step and as few steps as possible:
//
//   - Each node resolves one octet. Three 256-bit bitmaps say, for each of
//     the 256 values, whether a child node follows (then the child's index
//     is a base plus a popcount rank, as in Poptrie: children are stored
//     consecutively), whether the answer is the node's default (no further
//     load: this is what makes most denials cheap), or where the answer is
//     in a run-length compressed leaf array. A node is 128 bytes laid out
//     as two 64-byte halves that each carry the bitmaps of 128 values plus
//     the node's bases and default, so a step reads one cache line.
//   - Answers are precomputed: every slot holds the result of the longest
//     match so far (leaf pushing, as in ART and Poptrie), so a lookup never
//     backtracks and never compares prefixes on the way down.
//   - Path compression: below a slot whose rules form a single chain of
//     nested prefixes (usually a single rule), there is no node at all but
//     a check entry naming the most specific rule. The lookup tests that
//     rule and, if it does not contain the address, the rule that contains
//     it, and so on, up to a rule known to contain the whole slot. Long
//     IPv6 prefixes therefore cost one node step and one comparison
//     instead of up to 16 steps.
//   - With 2,048 or more rules of a family, the first 16 bits are resolved
//     by a directly indexed table of 65,536 entries (256 KiB), which
//     replaces the two most-visited levels by one load. Smaller sets do
//     without it and stay in a few kilobytes.
//   - Rules are kept as compact records (16 bytes for IPv4, 32 for IPv6)
//     in input order, from which Decide rebuilds the Rule it reports.
//
// Building is a sort and one pass over the rules; 100,000 rules take well
// under a second (about 60 ms on the machine of bench/acl/RESULTS.md). Memory is about 50 bytes per rule for typical lists; the
// worst case, rules that pair up along long shared IPv6 paths, is bounded
// by one 128-byte node per octet of each rule, under 2 KiB per rule.
//
// A one-bit-per-level (binary or path-compressed Patricia) trie would need
// up to 32 or 128 dependent steps, and a sorted-range search such as
// netipx.IPSet about log2(n) of them. The compared alternatives and their
// numbers are in the bench/acl module of this repository; at 100,000
// prefixes this structure uses about 50 bytes per prefix, rule records
// included.
package acl
