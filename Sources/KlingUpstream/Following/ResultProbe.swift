import CFFmpeg
import Foundation
import KlingCore

/// Reads a downloaded result's size, duration and audio with FFmpeg's libavformat, in process, so task details
/// describe the file we serve.
///
/// An ffprobe run per result cost about 0.07 s of CPU (loading its libraries); while following many tasks at a
/// provider's full rate, those start-ups were what held the follower below the rate.
enum ResultProbe {
    struct Facts: Sendable {
        var width: Int
        var height: Int
        var durationSeconds: Double
        var hasAudio: Bool
    }

    /// Probes at once in this process (results of many followed tasks can arrive together); each runs on its own
    /// thread, since demuxing blocks.
    static let running = ConcurrencyLimit(count: 4)

    /// The facts of `file`, or a 501 ``EngineError`` naming `engine` when it is not a playable video.
    static func probe(_ file: URL, engine: String) async throws -> Facts {
        await running.acquire()
        let facts = await withCheckedContinuation { (continuation: CheckedContinuation<Facts?, Never>) in
            Thread.detachNewThread { continuation.resume(returning: read(file)) }
        }
        await running.release()
        guard let facts, facts.width > 0, facts.height > 0, facts.durationSeconds > 0 else {
            throw EngineError.renderFailed("\(engine): the provider's result is not a playable video")
        }
        return facts
    }

    /// libavformat logs to standard error by default; a result that does not probe is reported by `probe` instead.
    private static let quietLibrary: Void = av_log_set_level(AV_LOG_QUIET)

    /// Opens the file and reads its streams' parameters (decoding a few packets where the container leaves them out).
    private static func read(_ file: URL) -> Facts? {
        quietLibrary
        var context: UnsafeMutablePointer<AVFormatContext>?
        guard avformat_open_input(&context, file.path, nil, nil) >= 0, let opened = context else { return nil }
        defer { avformat_close_input(&context) }
        guard avformat_find_stream_info(opened, nil) >= 0 else { return nil }
        var facts = Facts(width: 0, height: 0, durationSeconds: 0, hasAudio: false)
        for index in 0..<Int(opened.pointee.nb_streams) {
            guard let parameters = opened.pointee.streams[index]?.pointee.codecpar?.pointee else { continue }
            if parameters.codec_type == AVMEDIA_TYPE_VIDEO, facts.width == 0 {
                facts.width = Int(parameters.width)
                facts.height = Int(parameters.height)
            } else if parameters.codec_type == AVMEDIA_TYPE_AUDIO {
                facts.hasAudio = true
            }
        }
        if opened.pointee.duration > 0 {
            facts.durationSeconds = Double(opened.pointee.duration) / Double(AV_TIME_BASE)
        }
        return facts
    }
}
