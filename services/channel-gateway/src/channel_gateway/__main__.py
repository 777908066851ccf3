from channel_gateway.bootstrap import main

main()
