/// Turns ffmpeg's frame counter into 0-99 progress, reporting only increases (100 is reported once files are in place).
actor FrameProgress {
    private let total: Int
    private let report: @Sendable (Int) async -> Void
    private var last = -1
    private var frames: [Int: Int] = [:]

    init(total: Int, report: @escaping @Sendable (Int) async -> Void) {
        self.total = max(1, total)
        self.report = report
    }

    /// Reports `value` (clamped to 0-99) if it is higher than anything reported so far.
    func percent(_ value: Int) async {
        let value = max(0, min(99, value))
        guard value > last else { return }
        last = value
        await report(value)
    }

    /// Records that `segment` (rendered side by side with others) has rendered `frame` frames, and reports the sum.
    func frame(_ frame: Int, segment: Int) async {
        frames[segment] = frame
        await percent(frames.values.reduce(0, +) * 100 / total)
    }
}
