import Foundation
import KlingAPI

/// The shots a preview renders: each with its prompt, whole-frame length and first frame in the output.
struct ShotPlan: Sendable, Hashable {
    struct Shot: Sendable, Hashable {
        var prompt: String
        var frames: Int
        var startFrame: Int
    }

    static let fps = 24
    var shots: [Shot]

    var totalFrames: Int { shots.reduce(0) { $0 + $1.frames } }

    init(request: GenerationRequest) {
        let seconds = max(1, request.duration)
        var parts: [(String, Int)]
        switch (request.multiShot, request.shotType) {
        case (true, .intelligence):
            parts = Self.split(request.prompt ?? "", seconds: seconds)
        case (true, _) where !request.shots.isEmpty:
            parts = request.shots.map { ($0.prompt, $0.duration) }
            // Validation makes the shots sum to the duration; should they not, share the duration out by their weights.
            if parts.map(\.1).reduce(0, +) != seconds || parts.contains(where: { $0.1 < 1 }) {
                let durations = Self.apportion(seconds, weights: parts.map { max(1, $0.1) })
                parts = Array(zip(parts.map(\.0).prefix(durations.count), durations))
            }
        default:
            parts = [(request.prompt ?? "", seconds)]
        }
        var start = 0
        shots = parts.map { prompt, seconds in
            defer { start += seconds * Self.fps }
            return Shot(prompt: prompt, frames: seconds * Self.fps, startFrame: start)
        }
    }

    /// Indices of the shots whose prompt mentions `@name` (followed by a non-word character or the end).
    func shots(mentioning name: String) -> [Int] {
        shots.indices.filter { Self.mentions(shots[$0].prompt, name: name) }
    }

    static func mentions(_ prompt: String, name: String) -> Bool {
        guard !name.isEmpty else { return false }
        var rest = prompt[...]
        while let range = rest.range(of: "@" + name) {
            let next = rest[range.upperBound...].first
            if next.map({ !($0.isLetter || $0.isNumber || $0 == "_") }) ?? true { return true }
            rest = rest[range.upperBound...]
        }
        return false
    }

    /// Splits a storyboard prompt into at most 6 shots (sentences, else clauses) with whole-second durations
    /// proportional to their length, each at least 1 s, summing to `seconds`. Deterministic.
    static func split(_ prompt: String, seconds: Int) -> [(String, Int)] {
        var pieces = pieces(of: prompt, separators: ".!?")
        if pieces.count < 2 { pieces = Self.pieces(of: prompt, separators: ",;—") }
        if pieces.isEmpty { pieces = [prompt] }
        let maxShots = min(GenerationRequest.maxShots, seconds)
        while pieces.count > maxShots {
            // Merge the shortest neighbouring pair.
            var best = 0
            for index in 0..<(pieces.count - 1) where pieces[index].count + pieces[index + 1].count < pieces[best].count + pieces[best + 1].count {
                best = index
            }
            pieces[best] = pieces[best] + " " + pieces[best + 1]
            pieces.remove(at: best + 1)
        }
        return Array(zip(pieces, apportion(seconds, weights: pieces.map { max(1, $0.count) })))
    }

    /// Whole seconds for each weight, at least 1 each, summing to `seconds` (largest remainder; ties to the earlier).
    /// Drops trailing weights when there are more weights than seconds.
    static func apportion(_ seconds: Int, weights: [Int]) -> [Int] {
        let weights = Array(weights.prefix(max(1, seconds)))
        let total = max(1, weights.reduce(0, +))
        let spare = max(0, seconds - weights.count)
        var durations = weights.map { 1 + spare * $0 / total }
        var remainders = weights.enumerated().map { ($0.offset, spare * $0.element % total) }
        remainders.sort { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
        var left = seconds - durations.reduce(0, +)
        for (index, _) in remainders where left > 0 {
            durations[index] += 1
            left -= 1
        }
        return durations
    }

    /// Splits at separators outside quotes that end a word (followed by whitespace or the end of the text).
    private static func pieces(of text: String, separators: String) -> [String] {
        var result: [String] = []
        var current = ""
        var inQuote = false
        let characters = Array(text)
        for (index, character) in characters.enumerated() {
            current.append(character)
            if character == "\"" || character == "“" || character == "”" { inQuote.toggle() }
            let endsWord = index + 1 == characters.count || characters[index + 1].isWhitespace || character == "—"
            if !inQuote, endsWord, separators.contains(character) {
                let piece = current.trimmingCharacters(in: .whitespacesAndNewlines)
                if piece.count > 1 { result.append(piece) }
                current = ""
            }
        }
        let rest = current.trimmingCharacters(in: .whitespacesAndNewlines)
        if !rest.isEmpty { result.append(rest) }
        return result
    }
}
