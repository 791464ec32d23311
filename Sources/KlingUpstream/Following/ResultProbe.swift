import Foundation
import KlingCore
import Subprocess
import SystemPackage

/// Reads a downloaded result's size, duration and audio with ffprobe, so task details describe the file we serve.
enum ResultProbe {
    struct Facts: Sendable {
        var width: Int
        var height: Int
        var durationSeconds: Double
        var hasAudio: Bool
    }

    /// ffprobe processes at once in this process (results of many followed tasks can arrive together).
    static let running = ConcurrencyLimit(count: 4)

    /// The facts of `file`, or a 501 ``EngineError`` naming `engine` when it is not a playable video.
    static func probe(_ file: URL, ffprobe: String, engine: String) async throws -> Facts {
        await running.acquire()
        let result: Result<Facts, any Error>
        do {
            result = .success(try await run(file, ffprobe: ffprobe, engine: engine))
        } catch {
            result = .failure(error)
        }
        await running.release()
        return try result.get()
    }

    private static func run(_ file: URL, ffprobe: String, engine: String) async throws -> Facts {
        let output: String
        let succeeded: Bool
        do {
            let result = try await Subprocess.run(
                ffprobe.contains("/") ? .path(FilePath(ffprobe)) : .name(ffprobe),
                arguments: [
                    "-v", "error", "-show_entries", "stream=codec_type,width,height:format=duration", "-of", "default=noprint_wrappers=1",
                    file.path,
                ],
                output: .string(limit: 1 << 16), error: .discarded)
            output = result.standardOutput
            succeeded = result.terminationStatus.isSuccess
        } catch {
            try Task.checkCancellation()
            throw EngineError.renderFailed("\(engine): ffprobe could not be run to check the result: \(error)")
        }
        var width: Int?
        var height: Int?
        var duration: Double?
        var hasAudio = false
        for line in output.split(whereSeparator: \.isNewline) {
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            switch parts[0] {
            case "width": width = width ?? Int(parts[1])
            case "height": height = height ?? Int(parts[1])
            case "duration": duration = Double(parts[1]) ?? duration
            case "codec_type" where parts[1] == "audio": hasAudio = true
            default: break
            }
        }
        guard succeeded, let width, let height, let duration, width > 0, height > 0, duration > 0 else {
            throw EngineError.renderFailed("\(engine): the provider's result is not a playable video")
        }
        return Facts(width: width, height: height, durationSeconds: duration, hasAudio: hasAudio)
    }
}
