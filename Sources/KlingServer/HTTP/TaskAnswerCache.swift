import Hummingbird
import KlingCore

/// Encoded task answers of one dialect (`recordInfo`, `TaskInfo`), reused while the task they were encoded from is
/// unchanged: encoding is the largest share of a status poll's cost, and clients poll unchanged tasks most of the time.
final class TaskAnswerCache: Sendable {
    private let answers = StampedCache<TaskRecord, ByteBuffer>(capacity: 10_000, maxAge: .seconds(60))

    /// The answer for `task`: the one encoded earlier from an equal record, or `encode(task)`.
    func answer(for task: TaskRecord, encode: (TaskRecord) -> ByteBuffer) -> ByteBuffer {
        if let cached = answers.value(task.id, stamp: task) { return cached }
        let answer = encode(task)
        answers.store(answer, for: task.id, stamp: task)
        return answer
    }
}
