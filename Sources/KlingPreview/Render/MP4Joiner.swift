import CFFmpeg
import Foundation

/// Joins rendered pieces into the finished MP4 in process with FFmpeg's libavformat (the muxer the ffmpeg tool uses):
/// video segments one after another, plus an optional audio track, by stream copy, with the index first.
///
/// The ffmpeg tool did the same job in about 0.08 s, nearly all of it loading its 200-odd libraries; in process it
/// takes a few milliseconds, which is most of what a short render costs beyond a bare encode. Packets keep their
/// timestamps (shifted by the segments before them), so the audio's encoder delay stays in an edit list and the track
/// keeps its exact length.
enum MP4Joiner {
    /// Why a join failed, with libavformat's reason.
    typealias Failure = LibAVFailure

    /// Writes `output` from the video stream of each file in `segments` (in order) and the audio stream of `audio`,
    /// on a thread of its own: muxing blocks (the index-first rewrite copies the whole file), which must not hold up
    /// the shared concurrency pool.
    static func join(segments: [URL], audio: URL?, into output: URL) async throws {
        try await OwnThread.run { try joinBlocking(segments: segments, audio: audio, into: output) }
    }

    private static func joinBlocking(segments: [URL], audio: URL?, into output: URL) throws {
        guard !segments.isEmpty else { throw Failure(description: "nothing to join") }
        LibAVFailure.quietLibraries
        let video = try StreamReader(files: segments, type: AVMEDIA_TYPE_VIDEO)
        let sound = try audio.map { try StreamReader(files: [$0], type: AVMEDIA_TYPE_AUDIO) }

        var context: UnsafeMutablePointer<AVFormatContext>?
        try check(avformat_alloc_output_context2(&context, nil, "mp4", output.path), "create \(output.lastPathComponent)")
        guard let context else { throw Failure(description: "create \(output.lastPathComponent): no context") }
        defer {
            if context.pointee.pb != nil { avio_closep(&context.pointee.pb) }
            avformat_free_context(context)
        }
        context.pointee.flags |= AVFMT_FLAG_BITEXACT
        let readers = [video] + (sound.map { [$0] } ?? [])
        var outputStreams: [UnsafeMutablePointer<AVStream>] = []
        for reader in readers {
            guard let stream = avformat_new_stream(context, nil) else { throw Failure(description: "add a stream: out of memory") }
            try check(avcodec_parameters_copy(stream.pointee.codecpar, reader.parameters), "copy stream parameters")
            stream.pointee.codecpar.pointee.codec_tag = 0
            stream.pointee.time_base = reader.timeBase
            outputStreams.append(stream)
        }
        try check(avio_open(&context.pointee.pb, output.path, AVIO_FLAG_WRITE), "open \(output.lastPathComponent)")
        var options: OpaquePointer?
        defer { av_dict_free(&options) }
        av_dict_set(&options, "movflags", "+faststart", 0)
        try check(avformat_write_header(context, &options), "write the header")

        // Each reader holds its next packet; the one with the earlier decoding time is written first.
        var pending = try readers.map { try $0.next() }
        while true {
            var earliest: Int?
            for (index, packet) in pending.enumerated() {
                guard let packet else { continue }
                if let best = earliest, let other = pending[best],
                    av_compare_ts(packet.pointee.dts, readers[index].timeBase, other.pointee.dts, readers[best].timeBase) >= 0
                {
                    continue
                }
                earliest = index
            }
            guard let index = earliest, let packet = pending[index] else { break }
            packet.pointee.stream_index = Int32(index)
            av_packet_rescale_ts(packet, readers[index].timeBase, outputStreams[index].pointee.time_base)
            packet.pointee.pos = -1
            try check(av_interleaved_write_frame(context, packet), "write a packet")
            var used: UnsafeMutablePointer<AVPacket>? = packet
            av_packet_free(&used)
            pending[index] = try readers[index].next()
        }
        try check(av_write_trailer(context), "finish \(output.lastPathComponent)")
    }

    /// Reads one stream type from several files in turn, as one stream: each file's timestamps are shifted to start
    /// where the previous file's stream ended. Every file must have the same time base.
    private final class StreamReader {
        let parameters: UnsafeMutablePointer<AVCodecParameters>
        let timeBase: AVRational
        private var inputs: [(context: UnsafeMutablePointer<AVFormatContext>, stream: Int32)] = []
        private var current = 0
        private var offset: Int64 = 0
        private var end: Int64 = 0

        init(files: [URL], type: AVMediaType) throws {
            var opened: [(UnsafeMutablePointer<AVFormatContext>, Int32)] = []
            do {
                for file in files {
                    var context: UnsafeMutablePointer<AVFormatContext>?
                    try MP4Joiner.check(avformat_open_input(&context, file.path, nil, nil), "open \(file.lastPathComponent)")
                    guard let context else { throw Failure(description: "open \(file.lastPathComponent): no context") }
                    opened.append((context, -1))
                    // Fills in what the container leaves out (the AAC frame size, for one), as the ffmpeg tool does.
                    try MP4Joiner.check(avformat_find_stream_info(context, nil), "read \(file.lastPathComponent)")
                    let index = av_find_best_stream(context, type, -1, -1, nil, 0)
                    guard index >= 0 else {
                        throw Failure(description: "\(file.lastPathComponent) has no \(type == AVMEDIA_TYPE_VIDEO ? "video" : "audio") stream")
                    }
                    opened[opened.count - 1].1 = index
                }
            } catch {
                for (context, _) in opened {
                    var closing: UnsafeMutablePointer<AVFormatContext>? = context
                    avformat_close_input(&closing)
                }
                throw error
            }
            inputs = opened.map { (context: $0.0, stream: $0.1) }
            let first = inputs[0].context.pointee.streams[Int(inputs[0].stream)]!
            parameters = first.pointee.codecpar
            timeBase = first.pointee.time_base
            for input in inputs.dropFirst() {
                let base = input.context.pointee.streams[Int(input.stream)]!.pointee.time_base
                guard base.num == timeBase.num, base.den == timeBase.den else {
                    throw Failure(description: "segments differ in time base")
                }
            }
        }

        deinit {
            for input in inputs {
                var closing: UnsafeMutablePointer<AVFormatContext>? = input.context
                avformat_close_input(&closing)
            }
        }

        /// The next packet of the stream (the caller frees it), or `nil` after the last file's last packet.
        func next() throws -> UnsafeMutablePointer<AVPacket>? {
            guard let packet = av_packet_alloc() else { throw Failure(description: "read a packet: out of memory") }
            while current < inputs.count {
                let input = inputs[current]
                let status = av_read_frame(input.context, packet)
                if status == cffmpeg_averror_eof() {
                    current += 1
                    offset = end
                    continue
                }
                if status < 0 {
                    var freeing: UnsafeMutablePointer<AVPacket>? = packet
                    av_packet_free(&freeing)
                    try MP4Joiner.check(status, "read a packet")
                }
                guard packet.pointee.stream_index == input.stream else {
                    av_packet_unref(packet)
                    continue
                }
                packet.pointee.pts += offset
                packet.pointee.dts += offset
                end = max(end, packet.pointee.pts + packet.pointee.duration)
                return packet
            }
            var freeing: UnsafeMutablePointer<AVPacket>? = packet
            av_packet_free(&freeing)
            return nil
        }
    }

    fileprivate static func check(_ status: Int32, _ what: String) throws {
        try LibAVFailure.check(status, what)
    }
}
