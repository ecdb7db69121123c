# The seed's original terminal client, rebuilt from the seed document
# (../shared/seeds/000_da0ce67bbb3d22c7.txt) as faithfully as it shows it:
# threads, recv(1024) taken as one message, '#'-joined frames without LF.
# The ID prompt loop is not shown in the seed; it is rebuilt from its protocol
# notes (101 = "enter the ID again"). Kept unmodified in spirit: do not "fix" it.
# Run: python seed_client.py   (answers the seed's prompts on stdin)
import socket
import sys
import threading
from operator import eq

DIVIDER = '#'
userID = ''


def receive_msg(conn):
    try:
        while True:
            serverMsg = conn.recv(1024).decode()
            if eq(serverMsg, '102'):
                print('채팅방 접속이 해제되었습니다.')
                conn.close()
                sys.exit(1)
            elif eq(serverMsg, ''):
                # (The seed would print '' forever once the server closes; this
                #  rebuild stops instead, so that the test process ends.)
                return
            else:
                print(serverMsg)
    except Exception as e:
        print('접속 오류가 발생하였습니다.')


def send_msg(conn):
    try:
        while True:
            sendMsg = input()
            if eq(sendMsg[0:2], '/m'):
                sendMsgArr = sendMsg.split(' ')
                orgMsg = ''
                for i in range(2, len(sendMsgArr)):
                    orgMsg += sendMsgArr[i] + ' '
                sendMsg = '003' + DIVIDER + userID + DIVIDER + sendMsgArr[1] + DIVIDER + orgMsg
                conn.send(sendMsg.encode())
            elif eq(sendMsg[0:2], '/b'):
                sendMsgArr = sendMsg.split(' ')
                orgMsg = ''
                for i in range(1, len(sendMsgArr)):
                    orgMsg += sendMsgArr[i] + ' '
                sendMsg = '002' + DIVIDER + userID + DIVIDER + orgMsg
                conn.send(sendMsg.encode())
            elif eq(sendMsg[0:2], '/q'):
                sendMsgArr = sendMsg.split(' ')
                sendMsg = '004' + DIVIDER + userID
                conn.send(sendMsg.encode())
            elif eq(sendMsg[0:4], '/who'):
                sendMsgArr = sendMsg.split(' ')
                sendMsg = '005' + DIVIDER + userID
                conn.send(sendMsg.encode())
            else:
                print('메시지를 정상적으로 입력해주세요.')
    except Exception as e:
        print('접속 오류가 발생하였습니다.')


serverName = input('Enter server IP : ')
serverPort = int(input('Enter server Port : '))

try:
    conn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    conn.connect((serverName, serverPort))
except:
    print('네트워크 오류가 발생하였습니다.')
    sys.exit(1)

while True:
    userID = input('사용자 ID : ')
    conn.send(('001' + DIVIDER + userID).encode())
    serverMsg = conn.recv(1024).decode()
    if eq(serverMsg, '101'):
        print('중복된 ID입니다. ID를 다시 입력해주세요.')
    else:
        print(serverMsg)
        break

threading.Thread(target=receive_msg, args=(conn,), daemon=True).start()
send_msg(conn)
