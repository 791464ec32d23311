import Foundation

extension OpenAIVideosProvider {
    /// Which server takes the next video: the one with the fewest videos in flight from this process (created or seen
    /// by a status query, not yet finished), ties to the first listed.
    actor Placement {
        private var inFlight: [[String: Date]]
        private var reserved: [Int]
        /// A video not heard of for this long no longer counts (its task ended without a final status, say).
        private let forgetAfter: TimeInterval = 6 * 3600

        init(count: Int) {
            inFlight = Array(repeating: [:], count: count)
            reserved = Array(repeating: 0, count: count)
        }

        /// Picks a server for a create and counts it until ``started(_:id:)`` or ``release(_:)``; servers in `excluded`
        /// only when every server is.
        func reserve(excluding excluded: Set<Int> = []) -> Int {
            let now = Date()
            for index in inFlight.indices { inFlight[index] = inFlight[index].filter { now.timeIntervalSince($0.value) < forgetAfter } }
            let candidates = inFlight.indices.filter { !excluded.contains($0) }
            let index = (candidates.isEmpty ? Array(inFlight.indices) : candidates)
                .min { inFlight[$0].count + reserved[$0] < inFlight[$1].count + reserved[$1] } ?? 0
            reserved[index] += 1
            return index
        }

        /// The create succeeded: the video is in flight.
        func started(_ index: Int, id: String) {
            reserved[index] = max(0, reserved[index] - 1)
            inFlight[index][id] = Date()
        }

        /// The create failed.
        func release(_ index: Int) { reserved[index] = max(0, reserved[index] - 1) }

        /// A status query found the video unfinished (also one created before a restart).
        func seen(_ index: Int, id: String) { inFlight[index][id] = Date() }

        func finished(_ index: Int, id: String) { inFlight[index][id] = nil }

        /// Videos in flight per server (for tests and logs).
        var counts: [Int] { inFlight.indices.map { inFlight[$0].count + reserved[$0] } }
    }
}
