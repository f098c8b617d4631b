import Foundation

extension ModelInspection {
    /// The widest each column of the node table gets: a real model's names and input lists run
    /// to hundreds of characters, and a table of thousands of rows must stay readable. Cut text
    /// ends in "…"; `--json` has it whole.
    static let nodeColumnLimits = (name: 44, opType: 20, inputs: 40, outputs: 30)

    /// The node table, then the per-op-type summary and the summary line.
    public func renderTable() -> String {
        renderNodes() + "\n" + renderSummary()
    }

    /// One aligned row per node: its shapes (cut to ``nodeColumnLimits``), TensorRT's support
    /// ("no (limit)" for a node beyond a documented limit of an op TensorRT runs), whether
    /// `--auto` takes it and the TPAT verdict.
    public func renderNodes() -> String {
        let limits = Self.nodeColumnLimits
        func value(_ v: ValueSummary) -> String {
            let shape = v.shape.map { "[\($0.map(\.description).joined(separator: ","))]" } ?? "[?]"
            return "\(v.dtype ?? "?")\(shape)\(v.isConstant ? " const" : "")"
        }
        func values(_ list: [ValueSummary]) -> String {
            TerminalText.escaped(list.filter { !$0.name.isEmpty }.map(value).joined(separator: " "))
        }
        let rows = nodes.map { n in
            [
                Self.cut(TerminalText.escaped(n.name), to: limits.name, keepingEnd: true),
                Self.cut(TerminalText.escaped(n.qualifiedOpType), to: limits.opType, keepingEnd: false),
                Self.cut(values(n.inputs), to: limits.inputs, keepingEnd: false),
                Self.cut(values(n.outputs), to: limits.outputs, keepingEnd: false),
                n.tensorRTLimitBroken != nil ? "no (limit)" : n.tensorRTNative ? "yes" : "no",
                n.takenByAuto ? "yes" : "-",
                n.tpat.text,
            ]
        }
        return Self.aligned(header: ["NODE", "OP", "INPUTS", "OUTPUTS", "TENSORRT", "AUTO", "TPAT"], rows: rows)
    }

    /// One row per op type (``summary``) and the summary line.
    public func renderSummary() -> String {
        let rows = summary.map { row in
            let tensorRT =
                !row.tensorRTNative ? "no"
                : row.beyondTensorRTLimits > 0 ? "yes, \(row.beyondTensorRTLimits) beyond limits"
                : row.tensorRTRestrictions.isEmpty ? "yes" : "yes, with limits"
            let verdicts = row.tpat.sorted { $0.key < $1.key }
            let tpat =
                verdicts.count == 1 ? verdicts[0].key.text : verdicts.map { "\($0.value) \($0.key.text)" }.joined(separator: "; ")
            return [
                TerminalText.escaped(row.opType),
                row.inBodies == 0 ? "\(row.nodes)" : "\(row.nodes) (\(row.inBodies) in bodies)",
                tensorRT, "\(row.takenByOpTypes)", "\(row.takenByAuto)", tpat,
            ]
        }
        return Self.aligned(header: ["OP", "NODES", "TENSORRT", "--OP-TYPES", "--AUTO", "TPAT"], rows: rows) + summaryLine + "\n"
    }

    /// `text` cut to `width` characters with "…" where text was left out: the middle for names
    /// (their start says where, their end says what), the end for everything else.
    static func cut(_ text: String, to width: Int, keepingEnd: Bool) -> String {
        guard text.count > width else { return text }
        guard keepingEnd else { return String(text.prefix(width - 1)) + "…" }
        let head = (width - 1) / 3
        return String(text.prefix(head)) + "…" + String(text.suffix(width - 1 - head))
    }

    /// Rows under a header, each column as wide as its widest cell; the last column is not padded.
    static func aligned(header: [String], rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in i == cells.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }
        return ([header] + rows).map { line($0) + "\n" }.joined()
    }
}
