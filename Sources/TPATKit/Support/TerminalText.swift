import Foundation

/// Makes text from a model (node names, op types, value names) or from a tool's log safe to print
/// on a terminal. A model is untrusted input: a node name holding ESC sequences, carriage returns
/// or NULs could recolour, overwrite or hide what TPAT prints (a fake "0 failed" line over a real
/// failure), so every such character is shown as an escape instead of being sent raw.
public enum TerminalText {
    /// `text` with every control or layout-changing character written as an escape (`\e`, `\r`,
    /// `\n`, `\t`, `\0`, else `\u{XX}`). For one name or value inside a message: nothing in it can
    /// start a new line or move the cursor.
    public static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var result = ""
        for scalar in text.unicodeScalars {
            if needsEscape(scalar) {
                result += escape(scalar)
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// A whole message for the terminal: line breaks are kept (messages quote several lines of a
    /// log), every other control or layout-changing character is escaped as in ``escaped(_:)``.
    public static func sanitized(_ message: String) -> String {
        message.split(separator: "\n", omittingEmptySubsequences: false).map { escaped(String($0)) }.joined(separator: "\n")
    }

    /// C0 and C1 controls and DEL; the Unicode line and paragraph separators; and the bidirectional
    /// embedding, override and isolate controls, which reorder the text shown after them.
    static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: true
        case 0x2028, 0x2029: true
        case 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: true
        default: false
        }
    }

    private static func escape(_ scalar: Unicode.Scalar) -> String {
        switch scalar {
        case "\u{1B}": "\\e"
        case "\r": "\\r"
        case "\n": "\\n"
        case "\t": "\\t"
        case "\0": "\\0"
        default: "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
        }
    }
}

/// The line of a tool's log that says why it failed, for messages that must stand on their own
/// (the log may be read later, or not at all).
public enum LogExcerpt {
    /// The last line of `text` that carries a reason: blank lines, Python traceback frames and
    /// carets, and make's own "*** Error" and directory lines are skipped, since the reason comes
    /// before them. At most `limit` characters; nil when no line qualifies.
    public static func lastMeaningfulLine(of text: String, limit: Int = 300) -> String? {
        let lines = text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).map { $0.trimmingCharacters(in: .whitespaces) }
        guard let line = lines.last(where: isMeaningful) else { return nil }
        return line.count > limit ? String(line.prefix(limit)) + "…" : line
    }

    /// The last meaningful line of the log file at `url`; nil when it is missing, unreadable or
    /// holds no such line. Reads at most the last 256 KiB (a tuning log can be large).
    public static func lastMeaningfulLine(ofFile url: URL, limit: Int = 300) -> String? {
        guard let handle = try? FileHandle(forReadingFrom: url) else { return nil }
        defer { try? handle.close() }
        let tail: UInt64 = 256 * 1024
        if let end = try? handle.seekToEnd(), end > tail { try? handle.seek(toOffset: end - tail) } else { try? handle.seek(toOffset: 0) }
        guard let data = try? handle.readToEnd() else { return nil }
        return lastMeaningfulLine(of: String(decoding: data, as: UTF8.self), limit: limit)
    }

    static func isMeaningful(_ line: String) -> Bool {
        if line.isEmpty { return false }
        if line.allSatisfy({ "^~-=*. ".contains($0) }) { return false }
        if line.hasPrefix("Traceback (most recent call last)") || line.hasPrefix("File \"") { return false }
        if line.hasPrefix("During handling of the above exception") || line.hasPrefix("The above exception was the direct cause") { return false }
        if line.hasPrefix("make: ") || line.hasPrefix("make[") { return false }
        // nvcc's closing count ("1 error detected in the compilation of ...") repeats nothing useful.
        if line.contains("detected in the compilation of") { return false }
        return true
    }
}
