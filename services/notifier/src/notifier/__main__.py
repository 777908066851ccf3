from notifier.bootstrap import main

main()
