import KlingCore

extension RateLimiter {
    /// What every authenticated route does first: the request's account, after counting the request against that
    /// account's `kind` rate limit (429 past it).
    func admit(_ kind: Kind, _ context: KlingRequestContext, tasks: TaskService) throws -> Account {
        let account = try context.requireAccount()
        try check(kind, context: context, limits: tasks.limits(for: account))
        return account
    }
}
