import Foundation
import KlingCore

/// Speaks the quoted dialogue of prompts with espeak-ng, one WAV file per line, a different voice per named speaker.
struct SpeechSynthesizer: Sendable {
    /// One quoted passage and who says it, when the prompt names them.
    struct Line: Sendable, Hashable {
        var text: String
        /// The speaker's name as written (without a leading `@`), or `nil` when the prompt does not say.
        var speaker: String?
    }

    /// A spoken line on disk.
    struct Clip: Sendable, Hashable {
        /// File name inside the scratch folder.
        var file: String
        /// Length in samples at ``FilterGraphBuilder/sampleRate``.
        var samples: Int
    }

    /// Voices given to named speakers in order of first appearance (espeak-ng voice + variant); lines without a
    /// named speaker use ``narrator``.
    static let voices = ["en-us+m3", "en-gb+f3", "en-us+m7", "en-gb+f4", "en-gb-scotland+m1", "en-us+f2"]
    static let narrator = "en-us"
    static let speechVerbs: Set<String> = [
        "says", "said", "say", "asks", "asked", "ask", "shouts", "shouted", "shout", "whispers", "whispered", "whisper",
        "replies", "replied", "reply", "answers", "answered", "answer", "yells", "yelled", "sighs", "sighed", "calls",
        "called", "mutters", "muttered", "adds", "added", "exclaims", "exclaimed", "cries", "cried", "tells", "told",
        "laughs", "laughed", "sings", "sang",
    ]
    static let pronouns: Set<String> = ["he", "she", "they", "i", "we", "it", "you", "someone", "everyone", "the", "a", "an"]

    let executable: String

    /// Quoted passages ("..." or “...”) in order, each with its speaker where the text names one: `Anna says "..."`,
    /// `Anna: "..."`, `"...", Anna says`, `"..." says Anna`, and `@name` forms of each.
    static func lines(in prompt: String) -> [Line] {
        var outside: [String] = [""]
        var quotes: [String] = []
        var current: String?
        for character in prompt {
            if character == "\"" || character == "“" || character == "”" {
                if let text = current {
                    quotes.append(text)
                    outside.append("")
                    current = nil
                } else {
                    current = ""
                }
            } else if current != nil {
                current?.append(character)
            } else {
                outside[outside.count - 1].append(character)
            }
        }
        var lines: [Line] = []
        for (index, quote) in quotes.enumerated() {
            let text = quote.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !text.isEmpty else { continue }
            let speaker = speakerBefore(outside[index]) ?? speakerAfter(outside[index + 1])
            // 200 characters is more speech than a 15 s shot can hold; the rest would be cut anyway.
            lines.append(Line(text: String(text.prefix(200)), speaker: speaker))
        }
        return lines
    }

    /// The voice of every named speaker across `shots`, in order of first appearance (names compared case-insensitively).
    static func voiceAssignments(_ shots: [[Line]]) -> [String: String] {
        var assignments: [String: String] = [:]
        for line in shots.joined() {
            guard let key = line.speaker?.lowercased(), assignments[key] == nil else { continue }
            assignments[key] = voices[assignments.count % voices.count]
        }
        return assignments
    }

    static func voice(for line: Line, in assignments: [String: String]) -> String {
        line.speaker.flatMap { assignments[$0.lowercased()] } ?? narrator
    }

    /// Writes `text` as speech to `file` and returns its length in samples at `sampleRate`.
    func speak(_ text: String, voice: String, to file: URL, sampleRate: Int) async throws -> Int {
        let outcome = try await ProcessRunner.run(executable, ["-v", voice, "-s", "165", "-w", file.path, "--", text])
        guard outcome.succeeded else {
            throw EngineError.renderFailed("espeak-ng failed: \(ProcessRunner.reason(outcome.standardError))")
        }
        guard let samples = Self.wavLength(file, sampleRate: sampleRate) else {
            throw EngineError.renderFailed("espeak-ng wrote no readable WAV file")
        }
        return samples
    }

    /// The length of a PCM WAV file in samples at `sampleRate`, read from its header and data chunk size.
    static func wavLength(_ file: URL, sampleRate: Int) -> Int? {
        guard let data = try? Data(contentsOf: file), data.count >= 44, data.prefix(4) == Data("RIFF".utf8) else { return nil }
        let bytes = [UInt8](data)
        func u32(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24 }
        func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
        var rate = 0, blockAlign = 0
        var offset = 12
        while offset + 8 <= bytes.count {
            let id = String(decoding: bytes[offset..<offset + 4], as: UTF8.self)
            // espeak-ng streaming to a file may leave a chunk size unset (0 or 0xFFFFFFFF): take the rest of the file.
            var size = u32(offset + 4)
            if id == "fmt ", offset + 24 <= bytes.count {
                rate = u32(offset + 12)
                blockAlign = u16(offset + 20)
            } else if id == "data" {
                if size == 0 || offset + 8 + size > bytes.count { size = bytes.count - offset - 8 }
                guard rate > 0, blockAlign > 0 else { return nil }
                return size / blockAlign * sampleRate / rate
            }
            offset += 8 + size + (size & 1)
        }
        return nil
    }

    // MARK: - Speakers

    private static func words(_ text: Substring) -> [String] {
        text.split(whereSeparator: { (character: Character) in
            !(character.isLetter || character.isNumber || character == "@" || character == "_" || character == "-")
        }).map(String.init)
    }

    private static func name(_ word: String) -> String? {
        let bare = word.hasPrefix("@") ? String(word.dropFirst()) : word
        guard let first = bare.first, !bare.isEmpty, !pronouns.contains(bare.lowercased()) else { return nil }
        return word.hasPrefix("@") || first.isUppercase ? bare : nil
    }

    /// `Anna says`, `Anna:` or `@anna whispers,` right before the quote (within the same sentence).
    private static func speakerBefore(_ text: String) -> String? {
        let sentence = text.split(omittingEmptySubsequences: false, whereSeparator: { ".!?".contains($0) }).last ?? ""
        let trimmed = sentence.trimmingCharacters(in: .whitespacesAndNewlines)
        let list = words(Substring(trimmed))
        guard let last = list.last else { return nil }
        if trimmed.hasSuffix(":") { return name(last) }
        if speechVerbs.contains(last.lowercased()), list.count >= 2 { return name(list[list.count - 2]) }
        return nil
    }

    /// `, Anna says` or `says Anna` right after the quote.
    private static func speakerAfter(_ text: String) -> String? {
        let sentence = text.split(omittingEmptySubsequences: false, whereSeparator: { ".!?".contains($0) }).first ?? ""
        let list = words(sentence)
        if list.count >= 2, speechVerbs.contains(list[0].lowercased()) { return name(list[1]) }
        if list.count >= 2, speechVerbs.contains(list[1].lowercased()) { return name(list[0]) }
        return nil
    }
}
