name: string
nil: nil
