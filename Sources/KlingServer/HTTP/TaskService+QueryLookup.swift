import Hummingbird
import KlingCore

extension TaskService {
    /// The account's task whose id is the query parameter `parameter` of `GET path?parameter=...`: 400 naming the
    /// parameter when it is missing, 404 when the account has no such task (another account's tasks included).
    func task(queryParameter parameter: String, of request: Request, path: String, account: Account) async throws -> TaskRecord {
        guard let id = request.uri.queryParameters[Substring(parameter)].map(String.init), !id.isEmpty else {
            throw APIError.validation("\(parameter): is required (GET \(path)?\(parameter)=...)")
        }
        guard let task = try await task(id: id, account: account) else {
            throw APIError.notFound("\(parameter): no task \(id) for this account")
        }
        return task
    }
}
