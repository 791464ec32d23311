import Foundation
import KlingCore

/// Speaks the quoted dialogue of a prompt with espeak-ng into a WAV file.
struct SpeechSynthesizer: Sendable {
    let executable: String

    /// Quoted passages ("..." or “...”) in order, joined by pauses; `nil` when the prompt has no dialogue.
    static func dialogue(in prompt: String) -> String? {
        var lines: [String] = []
        var current: String?
        for character in prompt {
            if character == "\"" || character == "“" || character == "”" {
                if let text = current {
                    let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
                    if !trimmed.isEmpty { lines.append(trimmed) }
                    current = nil
                } else {
                    current = ""
                }
            } else if current != nil {
                current?.append(character)
            }
        }
        // 300 characters is more speech than a 15 s shot can hold; the rest would be cut anyway.
        return lines.isEmpty ? nil : String(lines.joined(separator: ". ").prefix(300))
    }

    /// Writes `text` as speech to `file`.
    func speak(_ text: String, voice: String = "en", to file: URL) async throws {
        let outcome = try await ProcessRunner.run(executable, ["-v", voice, "-s", "165", "-w", file.path, "--", text])
        guard outcome.succeeded else {
            throw EngineError.renderFailed("espeak-ng failed: \(ProcessRunner.reason(outcome.standardError))")
        }
    }
}
