/// Caption layout: font sizes relative to the frame and word wrapping (drawtext does not wrap by itself).
enum CaptionText {
    /// Caption font size for a frame height.
    static func fontSize(height: Int) -> Int { max(18, height / 24) }

    /// Wraps `text` to the frame width in at most `maxLines` lines, ending with "…" when cut.
    static func wrap(_ text: String, width: Int, height: Int, maxLines: Int = 3) -> String {
        let fontSize = fontSize(height: height)
        // DejaVu Sans averages about 0.55 em per character; keep a margin of 7.5% on each side.
        let perLine = max(12, Int(Double(width) * 0.85 / (Double(fontSize) * 0.55)))
        var lines: [String] = []
        var current = ""
        for word in text.split(whereSeparator: \.isWhitespace) {
            if current.isEmpty {
                current = String(word.prefix(perLine))
            } else if current.count + 1 + word.count <= perLine {
                current += " " + word
            } else {
                lines.append(current)
                current = String(word.prefix(perLine))
            }
        }
        if !current.isEmpty { lines.append(current) }
        if lines.count > maxLines {
            lines = Array(lines.prefix(maxLines))
            lines[maxLines - 1] = String(lines[maxLines - 1].prefix(perLine - 1)) + "…"
        }
        // drawtext refuses an empty text file.
        return lines.isEmpty ? " " : lines.joined(separator: "\n")
    }
}
