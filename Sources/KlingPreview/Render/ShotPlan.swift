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
        let parts: [(String, Int)]
        if request.multiShot {
            if request.shotType == .intelligence {
                parts = Self.split(request.prompt ?? "", seconds: request.duration)
            } else {
                parts = request.shots.map { ($0.prompt, $0.duration) }
            }
        } else {
            parts = [(request.prompt ?? "", request.duration)]
        }
        var start = 0
        shots = parts.map { prompt, seconds in
            defer { start += seconds * Self.fps }
            return Shot(prompt: prompt, frames: seconds * Self.fps, startFrame: start)
        }
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
        // Largest-remainder apportionment of the seconds left after 1 s each.
        let weights = pieces.map { max(1, $0.count) }
        let total = weights.reduce(0, +)
        let spare = seconds - pieces.count
        var durations = weights.map { 1 + spare * $0 / total }
        var remainders = weights.enumerated().map { ($0.offset, spare * $0.element % total) }
        remainders.sort { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
        var left = seconds - durations.reduce(0, +)
        for (index, _) in remainders where left > 0 {
            durations[index] += 1
            left -= 1
        }
        return Array(zip(pieces, durations))
    }

    private static func pieces(of text: String, separators: String) -> [String] {
        var result: [String] = []
        var current = ""
        var inQuote = false
        for character in text {
            current.append(character)
            if character == "\"" || character == "“" || character == "”" { inQuote.toggle() }
            if !inQuote, separators.contains(character) {
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
