import CFFmpeg
import Foundation

/// Renders a preview's audio track in process: an audio filter graph run by libavfilter, encoded to AAC by libavcodec
/// and written as an M4A by libavformat (the libraries the ffmpeg tool uses, with the same encoder settings).
///
/// As an ffmpeg process the track cost 0.07 s of loading 200-odd libraries on top of the 0.1 s of encoding 5 s of
/// audio, on the cores the video processes render on. Its inputs are our own speech files and generated noise,
/// never user media, so nothing untrusted is decoded in the server's process.
enum AudioRenderer {
    /// Why rendering the track failed, with the library's reason.
    typealias Failure = LibAVFailure

    /// AAC bit rate of the track.
    static let bitRate = 128_000

    /// Highest frequency the encoder codes, in Hz: half of espeak-ng's 22,050 Hz, above which the speech has nothing
    /// (the noise bed and the cut sounds are filtered far below it). The encoder's own choice for 128 kb/s stereo is
    /// 16 kHz; coding the empty bands between cost a fifth of the encoding time (5 s of speech over the bed: 0.145 CPU s
    /// instead of 0.185).
    static let bandwidth: Int32 = 11_025

    /// Runs `graph` and writes its output as stereo AAC at `sampleRate` to `output`, on a thread of its own: encoding
    /// is CPU work that must not hold up the shared concurrency pool.
    static func render(graph: String, sampleRate: Int, to output: URL) async throws {
        try await OwnThread.run { try renderBlocking(graph: graph, sampleRate: sampleRate, to: output) }
    }

    private static func renderBlocking(graph description: String, sampleRate: Int, to output: URL) throws {
        LibAVFailure.quietLibraries
        var graph = avfilter_graph_alloc()
        guard let filterGraph = graph else { throw Failure(description: "create the audio graph: out of memory") }
        defer { avfilter_graph_free(&graph) }
        try check(avfilter_graph_parse_ptr(filterGraph, description, nil, nil, nil), "read the audio graph")
        try check(avfilter_graph_config(filterGraph, nil), "configure the audio graph")
        // The one buffer sink (instance naming differs between FFmpeg versions, so it is found by its filter).
        let filters = UnsafeBufferPointer(start: filterGraph.pointee.filters, count: Int(filterGraph.pointee.nb_filters))
        guard let sink = filters.lazy.compactMap({ $0 }).first(where: { String(cString: $0.pointee.filter.pointee.name) == "abuffersink" })
        else { throw Failure(description: "the audio graph has no abuffersink") }

        guard let codec = avcodec_find_encoder_by_name("aac") else { throw Failure(description: "ffmpeg has no aac encoder") }
        var encoderContext = avcodec_alloc_context3(codec)
        guard let encoder = encoderContext else { throw Failure(description: "create the encoder: out of memory") }
        defer { avcodec_free_context(&encoderContext) }
        encoder.pointee.sample_fmt = AV_SAMPLE_FMT_FLTP
        encoder.pointee.sample_rate = Int32(sampleRate)
        av_channel_layout_default(&encoder.pointee.ch_layout, 2)
        encoder.pointee.bit_rate = Int64(bitRate)
        encoder.pointee.time_base = AVRational(num: 1, den: Int32(sampleRate))
        encoder.pointee.flags |= Int32(AV_CODEC_FLAG_BITEXACT) | Int32(AV_CODEC_FLAG_GLOBAL_HEADER)
        encoder.pointee.cutoff = bandwidth
        try check(avcodec_open2(encoder, codec, nil), "open the aac encoder")
        // Whole AAC frames from the sink (the last one may be short).
        av_buffersink_set_frame_size(sink, UInt32(encoder.pointee.frame_size))

        var formatContext: UnsafeMutablePointer<AVFormatContext>?
        try check(avformat_alloc_output_context2(&formatContext, nil, "mp4", output.path), "create \(output.lastPathComponent)")
        guard let context = formatContext else { throw Failure(description: "create \(output.lastPathComponent): no context") }
        defer {
            if context.pointee.pb != nil { avio_closep(&context.pointee.pb) }
            avformat_free_context(context)
        }
        context.pointee.flags |= AVFMT_FLAG_BITEXACT
        guard let stream = avformat_new_stream(context, nil) else { throw Failure(description: "add a stream: out of memory") }
        try check(avcodec_parameters_from_context(stream.pointee.codecpar, encoder), "set the stream parameters")
        stream.pointee.time_base = encoder.pointee.time_base
        try check(avio_open(&context.pointee.pb, output.path, AVIO_FLAG_WRITE), "open \(output.lastPathComponent)")
        try check(avformat_write_header(context, nil), "write the header")

        var frameBox = av_frame_alloc()
        var packetBox = av_packet_alloc()
        defer {
            av_frame_free(&frameBox)
            av_packet_free(&packetBox)
        }
        guard let frame = frameBox, let packet = packetBox else { throw Failure(description: "allocate a frame: out of memory") }
        let sinkTimeBase = av_buffersink_get_time_base(sink)

        /// Writes every packet the encoder has ready.
        func drain() throws {
            while true {
                let status = avcodec_receive_packet(encoder, packet)
                if status == cffmpeg_averror_eagain() || status == cffmpeg_averror_eof() { return }
                try check(status, "encode the audio")
                av_packet_rescale_ts(packet, encoder.pointee.time_base, stream.pointee.time_base)
                packet.pointee.stream_index = stream.pointee.index
                try check(av_interleaved_write_frame(context, packet), "write a packet")
            }
        }
        while true {
            let status = av_buffersink_get_frame(sink, frame)
            if status == cffmpeg_averror_eof() { break }
            try check(status, "run the audio graph")
            frame.pointee.pts = av_rescale_q(frame.pointee.pts, sinkTimeBase, encoder.pointee.time_base)
            let sent = avcodec_send_frame(encoder, frame)
            av_frame_unref(frame)
            try check(sent, "encode the audio")
            try drain()
        }
        try check(avcodec_send_frame(encoder, nil), "finish the audio")
        try drain()
        try check(av_write_trailer(context), "finish \(output.lastPathComponent)")
    }

    private static func check(_ status: Int32, _ what: String) throws {
        try LibAVFailure.check(status, what)
    }
}
